"""A change's own preview as a manifest, not a copy (pure).

A change's own preview (``{commit7}-{project}.{preview domain}``, never overwritten) is the manifest
``manifests/{project}/{commit7}.json``: for each path of the built site, its content's MD5 and Content-Type.
The content lives once per project in ``blobs/{project}/{md5}``, whatever the number of changes that contain
it, so publishing a one-file change of a 1,000-file site writes one blob and one manifest instead of copying
1,000 objects. What S3 does not hold under ``previews/{project}/commits/{commit7}/`` is answered from the
manifest (``workflows/adapters/preview_misses.py``: the embedded stack's preview server, and on AWS the Lambda that
CloudFront falls back to). Changes published before manifests existed keep their copies, which S3 serves.

The thread's own manifest (``manifests/{project}/threads/{thread}.json``) records what its preview prefix
holds, so the next publish knows what to send without listing the bucket: where changes have manifests, it
only names the latest change's (``sameAs``).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from workflows import previews
from workflows.names import BLOB_PREFIX, MANIFEST_PREFIX, PREVIEW_PREFIX

_MD5_RE = re.compile(r"^[0-9a-f]{32}$")
_VERSION_KEY_RE = re.compile(
    rf"^{re.escape(PREVIEW_PREFIX)}([a-z0-9-]+)/commits/([0-9a-f]{{{previews.COMMIT_LABEL_LENGTH}}})/(.*)$"
)


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True)
    md5: str
    type: str


class SiteManifest(BaseModel):
    """A built site by path (relative, ``about/index.html``)."""

    model_config = ConfigDict(frozen=True)
    files: dict[str, Entry]
    # Every entry's blob is stored (always for a change's manifest; a thread's only where changes have
    # manifests, i.e. previews at their own origins): the next publish need not look for them.
    blobs: bool = False
    # A thread's manifest where changes have their own: the key of the change's manifest it is the same as
    # (``files`` then empty), so a publish writes the site's list once, and reads it back from a cache (a
    # change's manifest never changes).
    sameAs: str = ""

    def find(self, candidates: list[str]) -> tuple[str, Entry] | None:
        """The first of ``candidates`` (``previews.keys_for_path``) the site has."""
        for relative in candidates:
            if relative in self.files:
                return relative, self.files[relative]
        return None


def version_manifest_key(project_id: str, commit: str) -> str:
    previews.commit_prefix(project_id, commit)  # validates
    return f"{MANIFEST_PREFIX}{project_id}/{commit[: previews.COMMIT_LABEL_LENGTH].lower()}.json"


def thread_manifest_key(project_id: str, thread_id: str) -> str:
    previews.thread_prefix(project_id, thread_id)  # validates
    return f"{MANIFEST_PREFIX}{project_id}/threads/{thread_id}.json"


def blob_key(project_id: str, md5: str) -> str:
    previews.site_prefix(project_id)  # validates the project id
    if not _MD5_RE.fullmatch(md5):
        raise ValueError(f"invalid blob {project_id!r}/{md5!r}")
    return f"{BLOB_PREFIX}{project_id}/{md5}"


def version_of_key(key: str) -> tuple[str, str, str] | None:
    """``previews/{project}/commits/{commit7}/{relative}`` -> (project, commit7, relative); None otherwise."""
    match = _VERSION_KEY_RE.match(key)
    if match is None or previews.root_of_key(key) is None:
        return None
    return match.group(1), match.group(2), match.group(3)
