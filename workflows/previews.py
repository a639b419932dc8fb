"""Where previews live and how a preview URL finds its files (pure).

Every preview is served at its own origin, so a built site's root-absolute links (``/_astro/index.css``,
``/logo.svg``, ``/contact/``) resolve inside the preview, as they would on the live site:

- the thread's preview, always the latest change: ``{thread}-{project}.{preview domain}`` ->
  ``previews/{project}/{thread}/``;
- one per change, never overwritten, so an older reply's link still shows what that reply described:
  ``{commit7}-{project}.{preview domain}`` -> ``previews/{project}/commits/{commit7}/``.

Thread ids are 8 characters and commit labels 7, so a label is never both. Locally the preview domain is
``preview.localhost`` (``*.localhost`` is loopback for browsers and curl) served by the embedded stack's
preview server; on AWS a wildcard domain on CloudFront, whose viewer-request function does the same mapping.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

from workflows.models import PROJECT_ID_RE
from workflows.names import PREVIEW_PREFIX, SCREENSHOT_PREFIX, SITE_PREFIX
from workflows.threads import THREAD_ID_RE

COMMIT_LABEL_LENGTH = 7
_COMMIT_LABEL_RE = re.compile(rf"^[0-9a-f]{{{COMMIT_LABEL_LENGTH}}}$")
LABEL_PLACEHOLDER = "{label}"
INDEX = "index.html"
NOT_FOUND_PAGE = "404.html"


def thread_prefix(project_id: str, thread_id: str) -> str:
    _check(project_id, thread_id)
    return f"{PREVIEW_PREFIX}{project_id}/{thread_id}/"


def commit_prefix(project_id: str, commit: str) -> str:
    short = commit[:COMMIT_LABEL_LENGTH].lower()
    if not PROJECT_ID_RE.fullmatch(project_id) or not _COMMIT_LABEL_RE.fullmatch(short):
        raise ValueError(f"invalid preview location {project_id!r}/{commit!r}")
    return f"{PREVIEW_PREFIX}{project_id}/commits/{short}/"


def page_slug(page: str) -> str:
    """A page's path on the site as a file-name stem: "/" -> "home", "/contact/" -> "contact"."""
    return re.sub(r"[^a-z0-9]+", "-", page.lower()).strip("-") or "home"


def screenshot_key(project_id: str, commit: str, name: int | str) -> str:
    """Where a picture of a change is kept (not under a preview: pictures are not site files); ``name`` is the
    page's number, "{n}-before" for the same page before the change."""
    commit_prefix(project_id, commit)  # validates
    if not re.fullmatch(r"[0-9]+(-before)?", str(name)):
        raise ValueError(f"invalid picture name {name!r}")
    return f"{SCREENSHOT_PREFIX}{project_id}/{commit[:COMMIT_LABEL_LENGTH].lower()}/{name}.png"


def site_prefix(project_id: str) -> str:
    """Where a project's live site is deployed (PUBLISH, and UNDO's rollback). Served locally at
    ``{project}.site.localhost``, on AWS at ``live-{project}.{preview domain}``."""
    if not PROJECT_ID_RE.fullmatch(project_id):
        raise ValueError(f"invalid site location {project_id!r}")
    return f"{SITE_PREFIX}{project_id}/"


def thread_label(project_id: str, thread_id: str) -> str:
    _check(project_id, thread_id)
    return f"{thread_id}-{project_id}"


def commit_label(project_id: str, commit: str) -> str:
    commit_prefix(project_id, commit)  # validates
    return f"{commit[:COMMIT_LABEL_LENGTH].lower()}-{project_id}"


LIVE_LABEL_PREFIX = "live-"  # on AWS the live sites share the preview domain: live-{project}.{domain}


def prefix_for_label(label: str) -> str | None:
    """The S3 prefix a host label names, or None when it names no preview (nor live site)."""
    if label.lower().startswith(LIVE_LABEL_PREFIX):
        # "live" is 4 characters: never a thread id (8) nor a commit label (7), so never ambiguous.
        project = label.lower().removeprefix(LIVE_LABEL_PREFIX)
        return site_prefix(project) if PROJECT_ID_RE.fullmatch(project) else None
    head, dash, project_id = label.lower().partition("-")
    if not dash or not PROJECT_ID_RE.fullmatch(project_id):
        return None
    if THREAD_ID_RE.fullmatch(head):
        return thread_prefix(project_id, head)
    if _COMMIT_LABEL_RE.fullmatch(head):
        return commit_prefix(project_id, head)
    return None


def label_of_host(host: str, preview_domain: str) -> str | None:
    """``{label}.{preview domain}[:port]`` -> label; None for any other host (one label, no dots)."""
    name = host.strip().lower().rsplit(":", 1)[0] if not host.strip().startswith("[") else ""
    suffix = "." + preview_domain.lower().strip(".")
    if not name.endswith(suffix):
        return None
    label = name[: -len(suffix)]
    return label if label and "." not in label else None


def keys_for_path(path: str) -> list[str]:
    """The object keys (relative to a preview's prefix) that may answer ``path``, in order: the file itself,
    then a directory's ``index.html`` (``/about`` and ``/about/`` both serve ``about/index.html``), then
    ``about.html`` (generators that write pretty URLs as files). Empty for a path that leaves the site."""
    raw = unquote(path.split("?", 1)[0].split("#", 1)[0])
    if "\0" in raw or "\\" in raw:
        return []
    normal = posixpath.normpath("/" + raw.lstrip("/"))
    if any(part == ".." for part in raw.split("/")) or not normal.startswith("/"):
        return []
    relative = normal.lstrip("/")
    if relative in ("", "."):
        return [INDEX]
    if raw.endswith("/"):
        return [f"{relative}/{INDEX}"]
    if "." in relative.rsplit("/", 1)[-1]:
        return [relative]
    return [relative, f"{relative}/{INDEX}", f"{relative}.html"]


_ROOT_RE = re.compile(
    rf"^(?:{re.escape(PREVIEW_PREFIX)}[a-z0-9-]+/(?:commits/[0-9a-f]{{{COMMIT_LABEL_LENGTH}}}|[2-9a-hjkmnp-tv-z]{{8}})"
    rf"|{re.escape(SITE_PREFIX)}[a-z0-9-]+)/"
)


def root_of_key(key: str) -> str | None:
    """The prefix of the preview (or live site) an object key lies in: ``previews/{project}/{thread}/``,
    ``previews/{project}/commits/{commit7}/`` or ``sites/{project}/``; None for any other key."""
    if "/../" in f"/{key}/" or "\0" in key:
        return None
    match = _ROOT_RE.match(key)
    if match is None:
        return None
    root = match.group(0)
    project = root.split("/")[1]
    return root if PROJECT_ID_RE.fullmatch(project) else None


def not_found_page_key(key: str) -> str | None:
    """What answers a miss for ``key``: its site's own ``404.html`` (None outside every preview and site)."""
    root = root_of_key(key)
    return root + NOT_FOUND_PAGE if root is not None else None


def url(template: str, label: str) -> str:
    """A preview's URL from the origin template (``http://{label}.preview.localhost:8080``)."""
    return template.replace(LABEL_PLACEHOLDER, label).rstrip("/") + "/"


def _check(project_id: str, thread_id: str) -> None:
    # The ids become key prefixes and host names; a malformed one could reach another thread's preview.
    if not PROJECT_ID_RE.fullmatch(project_id) or not THREAD_ID_RE.fullmatch(thread_id):
        raise ValueError(f"invalid preview location {project_id!r}/{thread_id!r}")
