"""What answers a path S3 does not hold under a preview's (or live site's) prefix.

- Under a change's own preview, ``previews/{project}/commits/{commit7}/``: the change's manifest
  (``workflows/site_manifests.py``) names the content, read from its blob (status 200, cached for good);
  a path the manifest lacks gets the site's own ``404.html`` from it.
- Anywhere else in a preview or live site: the site's own ``404.html`` (status 404), or a plain "Not found."
  when it has none.

Shared by the embedded stack's preview server and, on AWS, the Lambda behind CloudFront's origin failover:
S3 answers 403/404 for an object that is not there, and CloudFront then asks ``lambdas/preview_misses`` for
the same (already rewritten) path. The site is found from the key alone (``previews.root_of_key``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from workflows import previews, site_manifests
from workflows.site_manifests import SiteManifest

# key -> (body, Content-Type), or None when there is no such object.
GetObject = Callable[[str], tuple[bytes, str] | None]
_MISSING_CODES = {"NoSuchKey", "404", "NotFound", "403", "AccessDenied"}
IMMUTABLE = "public, max-age=31536000, immutable"
_MANIFESTS_KEPT = 64


@dataclass(frozen=True)
class Page:
    status: int
    content_type: str
    body: bytes
    cache_control: str = "no-cache"
    source_key: str = ""  # the object the body was read from


_NOT_FOUND = Page(404, "text/plain; charset=utf-8", b"Not found.\n")


class ChangeManifests:
    """A change's manifest never changes: keep the latest few read or written (a page and its assets ask for
    the same; the worker's next publish of the thread starts from the one it wrote)."""

    def __init__(self, kept: int = _MANIFESTS_KEPT) -> None:
        self._kept: OrderedDict[str, SiteManifest] = OrderedDict()
        self._limit = kept
        self._lock = Lock()

    def get(self, key: str, get: GetObject) -> SiteManifest | None:
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        found = get(key)
        if found is None:
            return None  # not kept: a publish may be writing it right now
        try:
            manifest = SiteManifest.model_validate_json(found[0])
        except ValidationError:
            return None
        self.keep(key, manifest)
        return manifest

    def keep(self, key: str, manifest: SiteManifest) -> None:
        with self._lock:
            self._kept[key] = manifest
            self._kept.move_to_end(key)
            while len(self._kept) > self._limit:
                self._kept.popitem(last=False)


_manifests = ChangeManifests()


def answer(key: str, get: GetObject, candidates: list[str] | None = None) -> Page:
    """The answer for ``key``, which the bucket does not hold. ``candidates``: the keys (relative to the
    preview) that may answer the request, in order (``previews.keys_for_path``); ``key``'s own by default."""
    version = site_manifests.version_of_key(key)
    if version is not None:
        project, commit, relative = version
        manifest = _manifests.get(site_manifests.version_manifest_key(project, commit), get)
        if manifest is not None:
            return _from_manifest(project, manifest, candidates or [relative], get)
    return not_found(key, get)


def _from_manifest(project: str, manifest: SiteManifest, candidates: list[str], get: GetObject) -> Page:
    for status, wanted in ((200, candidates), (404, [previews.NOT_FOUND_PAGE])):
        found = manifest.find(wanted)
        if found is None:
            continue
        _, entry = found
        blob = site_manifests.blob_key(project, entry.md5)
        stored = get(blob)
        if stored is not None:
            return Page(status, entry.type, stored[0], IMMUTABLE if status == 200 else "no-cache", blob)
    return _NOT_FOUND


def not_found(key: str, get: GetObject) -> Page:
    """The site's own 404 page for ``key`` (outside a change's manifest)."""
    page_key = previews.not_found_page_key(key)
    found = get(page_key) if page_key is not None else None
    if found is None:
        return _NOT_FOUND
    body, content_type = found
    return Page(404, content_type or "text/html; charset=utf-8", body, source_key=page_key or "")


def s3_getter(s3: Any, bucket: str) -> GetObject:
    def get(key: str) -> tuple[bytes, str] | None:
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                return None
            raise
        return response["Body"].read(), str(response.get("ContentType") or "")

    return get
