"""Publishing a built site as a thread's preview: ``previews/{project}/{thread}/...`` in S3 (where and at which
URL: ``workflows/previews.py``)."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from workflows import aws, previews, site_manifests
from workflows.errors import PreviewUploadError
from workflows.preview_misses import IMMUTABLE, s3_getter
from workflows.site_manifests import Entry, SiteManifest

_UPLOAD_WORKERS = 8
_DELETE_BATCH = 1000  # DeleteObjects' limit

# The built-in table only: the system's /etc/mime.types differs between images, and a preview should not
# change Content-Type because the container's base image did.
_TYPES = mimetypes.MimeTypes()
for _type, _ext in (
    ("text/javascript", ".js"),  # RFC 9239: text/javascript, not application/javascript
    ("text/javascript", ".mjs"),
    ("application/manifest+json", ".webmanifest"),
    ("application/wasm", ".wasm"),
    ("image/webp", ".webp"),
    ("image/avif", ".avif"),
    ("font/woff", ".woff"),
    ("font/woff2", ".woff2"),
):
    _TYPES.add_type(_type, _ext)
_TEXT_TYPES = {
    "application/javascript",
    "application/json",
    "application/xml",
    "application/manifest+json",
    "image/svg+xml",
}


@dataclass(frozen=True)
class PublishedPreview:
    url: str  # the thread's preview: always its latest change
    version_url: str  # this change's preview, never overwritten ("" when previews are paths, not origins)
    uploaded: int = 0  # files sent to S3 (unchanged files are not sent again)
    deleted: int = 0  # files the new build no longer has


class PreviewPublisher(Protocol):
    def publish(self, site_dir: Path, project_id: str, thread_id: str, commit: str) -> PublishedPreview: ...

    def store_screenshot(self, key: str, png: bytes) -> None: ...

    def publish_site(self, site_dir: Path, project_id: str) -> PublishedPreview: ...

    def urls(self, project_id: str, thread_id: str, commit: str) -> tuple[str, str]: ...


def content_type(path: Path) -> str:
    guessed, _ = _TYPES.guess_type(path.name)
    if guessed is None:
        return "application/octet-stream"
    if guessed.startswith("text/") or guessed in _TEXT_TYPES:
        return f"{guessed}; charset=utf-8"
    return guessed


def site_files(site_dir: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, file) for everything to publish.

    ``.git`` is never published (the checkout itself is the site when there is no build), nor are symlinks
    leading outside the site, which a repository could otherwise use to publish the worker's files.
    """
    root = site_dir.resolve()
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d != ".git")
        for name in sorted(files):
            path = Path(directory) / name
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                continue
            if path.is_file():
                yield path.relative_to(root).as_posix(), path


class S3PreviewPublisher:
    def __init__(self, bucket: str, base_url: str, s3_client: Any = None, site_url: str = "") -> None:
        self.bucket = bucket
        self.base_url = base_url
        # The live sites' origin template ("http://{label}.site.localhost:8123"; {label} = the project id).
        self.site_url = site_url
        self._s3 = s3_client

    @property
    def s3(self) -> Any:
        return self._s3 if self._s3 is not None else aws.client("s3")

    def publish_site(self, site_dir: Path, project_id: str) -> PublishedPreview:
        """Deploy ``site_dir`` as the project's live site (incrementally, like a preview)."""
        prefix = previews.site_prefix(project_id)
        files = {relative: (path, _DIGESTS.md5(path)) for relative, path in site_files(site_dir)}
        try:
            uploaded, deleted = self._sync(prefix, files)
        except (ClientError, BotoCoreError) as exc:
            raise PreviewUploadError(f"Could not deploy the live site: {exc}") from exc
        url = previews.url(self.site_url, project_id) if previews.LABEL_PLACEHOLDER in self.site_url else ""
        return PublishedPreview(url=url, version_url="", uploaded=uploaded, deleted=deleted)

    def _sync(
        self, prefix: str, files: dict[str, tuple[Path, str]], known: SiteManifest | None = None
    ) -> tuple[int, int]:
        """Make ``prefix`` hold exactly ``files``: send what differs, delete what is gone; (sent, deleted).
        ``known``: what the prefix holds, as the last publish recorded it (else the bucket is listed)."""
        if known is not None:
            existing = {prefix + relative: entry.md5 for relative, entry in known.files.items()}
        else:
            existing = self._etags(prefix)
        changed = {rel: path for rel, (path, md5) in files.items() if existing.get(prefix + rel) != md5}
        self._upload(prefix, changed)
        stale = [key for key in existing if key[len(prefix) :] not in files]
        self._delete(stale)
        return len(changed), len(stale)

    def publish(self, site_dir: Path, project_id: str, thread_id: str, commit: str) -> PublishedPreview:
        """The thread's preview (its prefix, only what changed sent) and, where previews have their own
        origins, the change's own: a manifest of content-addressed blobs (``workflows/site_manifests.py``),
        so a one-file change of a big site sends one file, one blob and two small manifests."""
        prefix = previews.thread_prefix(project_id, thread_id)  # validates: ids become key prefixes
        files = {relative: (path, _DIGESTS.md5(path)) for relative, path in site_files(site_dir)}
        url, version_url = self.urls(project_id, thread_id, commit)
        thread_key = site_manifests.thread_manifest_key(project_id, thread_id)
        manifest = SiteManifest(
            files={relative: Entry(md5=md5, type=content_type(path)) for relative, (path, md5) in files.items()},
            blobs=bool(version_url),
        )
        try:
            known = self._manifest(thread_key)
            uploaded, deleted = self._sync(prefix, files, known)
            if version_url:
                self._version(project_id, commit, files, manifest, known)
            # Last: it says what the prefix (and the blob store) now hold, for the next publish.
            self._put_json(thread_key, manifest, "no-cache")
        except (ClientError, BotoCoreError) as exc:
            raise PreviewUploadError(f"Could not upload the preview: {exc}") from exc
        return PublishedPreview(url=url, version_url=version_url, uploaded=uploaded, deleted=deleted)

    def _version(
        self,
        project_id: str,
        commit: str,
        files: dict[str, tuple[Path, str]],
        manifest: SiteManifest,
        known: SiteManifest | None,
    ) -> None:
        """The change's own preview: its files' blobs that are not stored yet, then its manifest (immutable;
        a retry writes the same again)."""
        if known is not None and known.blobs:
            stored = {entry.md5 for entry in known.files.values()}
        else:
            stored = self._blob_md5s(project_id)
        needed: dict[str, Path] = {}
        for path, md5 in files.values():
            if md5 not in stored:
                needed.setdefault(md5, path)
        s3 = self.s3
        with ThreadPoolExecutor(max_workers=_UPLOAD_WORKERS) as pool:
            futures = [
                pool.submit(self._put, s3, site_manifests.blob_key(project_id, md5), path, IMMUTABLE)
                for md5, path in needed.items()
            ]
            for future in futures:
                future.result()
        self._put_json(site_manifests.version_manifest_key(project_id, commit), manifest, IMMUTABLE)

    def _blob_md5s(self, project_id: str) -> set[str]:
        prefix = site_manifests.blob_key(project_id, "0" * 32)[:-32]
        return {key[len(prefix) :] for key in self._etags(prefix)}

    def _manifest(self, key: str) -> SiteManifest | None:
        found = s3_getter(self.s3, self.bucket)(key)
        if found is None:
            return None
        try:
            return SiteManifest.model_validate_json(found[0])
        except ValidationError:
            return None  # unreadable: list the bucket instead

    def _put_json(self, key: str, manifest: SiteManifest, cache_control: str) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=manifest.model_dump_json().encode(),
            ContentType="application/json",
            CacheControl=cache_control,
        )

    def urls(self, project_id: str, thread_id: str, commit: str) -> tuple[str, str]:
        """The thread's preview URL and ``commit``'s own ("" when previews are paths, not origins)."""
        if previews.LABEL_PLACEHOLDER not in self.base_url:
            return f"{self.base_url.rstrip('/')}/{project_id}/{thread_id}/index.html", ""
        thread = previews.url(self.base_url, previews.thread_label(project_id, thread_id))
        version = previews.url(self.base_url, previews.commit_label(project_id, commit)) if commit else ""
        return thread, version

    def store_screenshot(self, key: str, png: bytes) -> None:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=png, ContentType="image/png")
        except (ClientError, BotoCoreError) as exc:
            raise PreviewUploadError(f"Could not store the picture of the change: {exc}") from exc

    def _etags(self, prefix: str) -> dict[str, str]:
        """key -> MD5 of what is stored (a single-part upload's ETag; a multipart one never matches)."""
        found: dict[str, str] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.update({item["Key"]: item.get("ETag", "").strip('"') for item in page.get("Contents", [])})
        return found

    def _upload(self, prefix: str, files: dict[str, Path]) -> None:
        s3 = self.s3
        with ThreadPoolExecutor(max_workers=_UPLOAD_WORKERS) as pool:
            futures = [pool.submit(self._put, s3, prefix + relative, path) for relative, path in files.items()]
            for future in futures:
                future.result()  # re-raises the first failure

    def _put(self, s3: Any, key: str, path: Path, cache_control: str = "no-cache") -> None:
        # The thread's preview changes under the same URL with every message: never serve a stale one. A blob
        # never changes.
        with path.open("rb") as body:
            s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type(path), CacheControl=cache_control
            )

    def _delete(self, stale: list[str]) -> None:
        s3 = self.s3
        for start in range(0, len(stale), _DELETE_BATCH):
            batch = stale[start : start + _DELETE_BATCH]
            response = s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise PreviewUploadError(
                    f"Could not remove an old preview file {first.get('Key')}: {first.get('Message')}"
                )


class _Digests:
    """MD5s of files already read, by path and what ``stat`` says of them (size, modification time, inode), so
    a site that does not rebuild (no build step: the checkout is the site) is not read again on every change.
    As git does with its index, an entry whose file was modified within ``RACY_NS`` of its hashing is not
    trusted: a same-size rewrite in the same tick of the file system's coarse clock (a few milliseconds)
    would look unchanged."""

    RACY_NS = 100_000_000
    LIMIT = 200_000

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[int, int, int], int, str]] = {}
        self._lock = threading.Lock()

    def md5(self, path: Path) -> str:
        stat = path.stat()
        seen = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        with self._lock:
            kept = self._kept.get(str(path))
        if kept is not None and kept[0] == seen and kept[1] - stat.st_mtime_ns > self.RACY_NS:
            return kept[2]
        hashed_at = time.time_ns()
        digest = _md5(path)
        with self._lock:
            if len(self._kept) >= self.LIMIT:
                self._kept.clear()
            self._kept[str(path)] = (seen, hashed_at, digest)
        return digest


_DIGESTS = _Digests()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
