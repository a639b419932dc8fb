"""Publishing a built site as a thread's preview: ``previews/{project}/{thread}/...`` in S3 (where and at which
URL: ``workflows/previews.py``)."""

from __future__ import annotations

import functools
import hashlib
import mimetypes
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from workflows import previews, site_manifests
from workflows.adapters import aws
from workflows.adapters.preview_misses import IMMUTABLE, ChangeManifests, s3_getter
from workflows.errors import PreviewUploadError
from workflows.site_manifests import Entry, SiteManifest

_UPLOAD_WORKERS = 8
_DELETE_BATCH = 1000  # DeleteObjects' limit
_JSON = "application/json"

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
    return content_type_of(path.name)


def content_type_of(name: str) -> str:
    """The Content-Type for a file named ``name`` (a path's last part counts), by its last two extensions
    ("x.tar.gz" is not "x.gz"); a site's thousand files share a dozen, each guessed once."""
    base = name.rpartition("/")[2]
    suffixes = base.lstrip(".").split(".")[1:]
    if not suffixes or not suffixes[-1]:
        return _content_type_of(base)  # no extension (a trailing dot is none either)
    return _content_type_of("x." + ".".join(suffixes[-2:]))


@functools.lru_cache(maxsize=512)
def _content_type_of(name: str) -> str:
    guessed, _ = _TYPES.guess_type(name)
    if guessed is None:
        return "application/octet-stream"
    if guessed.startswith("text/") or guessed in _TEXT_TYPES:
        return f"{guessed}; charset=utf-8"
    return guessed


def site_files(site_dir: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, file) for everything to publish (see :func:`site_entries`)."""
    for relative, path, _ in site_entries(site_dir):
        yield relative, Path(path)


def site_entries(site_dir: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative posix path, the file's absolute path, what ``stat`` says of it) for everything to publish, in
    a stable order. Strings, not ``Path``s: building a thousand of them was a good part of the walk.

    ``.git`` is never published (the checkout itself is the site when there is no build), nor are symlinks
    leading outside the site, which a repository could otherwise use to publish the worker's files; symlinked
    directories are not followed. One ``scandir`` per directory and one ``stat`` per file: a 1,000-file site is
    walked on every change.
    """
    root = site_dir.resolve()
    yield from _walk(root, str(root), "")


def _walk(root: Path, directory: str, relative: str) -> Iterator[tuple[str, str, os.stat_result]]:
    with os.scandir(directory) as listing:
        entries = sorted(listing, key=lambda entry: entry.name)
    subdirectories = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name != ".git":
                subdirectories.append(entry)
            continue
        if entry.is_symlink():
            target = Path(entry.path).resolve()
            if not target.is_relative_to(root) or not target.is_file():
                continue
            stat = os.stat(entry.path)
        elif entry.is_file(follow_symlinks=False):
            stat = entry.stat(follow_symlinks=False)
        else:
            continue  # a socket, a FIFO: nothing a browser could be sent
        yield relative + entry.name, entry.path, stat
    for entry in subdirectories:
        yield from _walk(root, entry.path, f"{relative}{entry.name}/")


@dataclass(frozen=True)
class _Put:
    """One object to store. The thread's preview changes under the same URL with every message: it is never
    served stale (``no-cache``); a blob or a change's manifest never changes (``IMMUTABLE``)."""

    key: str
    body: Path | bytes
    content_type: str
    cache_control: str = "no-cache"


def _site(site_dir: Path) -> dict[str, tuple[str, str]]:
    """The built site: relative path -> (the file, its content's MD5)."""
    return {relative: (path, _DIGESTS.md5(path, stat)) for relative, path, stat in site_entries(site_dir)}


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
        files = _site(site_dir)
        try:
            uploaded, deleted = self._sync(prefix, files)
        except (ClientError, BotoCoreError) as exc:
            raise PreviewUploadError(f"Could not deploy the live site: {exc}") from exc
        url = previews.url(self.site_url, project_id) if previews.LABEL_PLACEHOLDER in self.site_url else ""
        return PublishedPreview(url=url, version_url="", uploaded=uploaded, deleted=deleted)

    def _sync(
        self, prefix: str, files: dict[str, tuple[str, str]], known: SiteManifest | None = None
    ) -> tuple[int, int]:
        """Make ``prefix`` hold exactly ``files``: send what differs, delete what is gone; (sent, deleted).
        ``known``: what the prefix holds, as the last publish recorded it (else the bucket is listed)."""
        changed, stale = self._plan(prefix, files, known)
        self._send(changed)
        self._delete(stale)
        return len(changed), len(stale)

    def _plan(
        self, prefix: str, files: dict[str, tuple[str, str]], known: SiteManifest | None
    ) -> tuple[list[_Put], list[str]]:
        """What to send to make ``prefix`` hold exactly ``files``, and the keys to delete."""
        if known is not None:
            existing = {prefix + relative: entry.md5 for relative, entry in known.files.items()}
        else:
            existing = self._etags(prefix)
        changed = [
            _Put(prefix + relative, Path(path), content_type_of(relative))
            for relative, (path, md5) in files.items()
            if existing.get(prefix + relative) != md5
        ]
        stale = [key for key in existing if key[len(prefix) :] not in files]
        return changed, stale

    def publish(self, site_dir: Path, project_id: str, thread_id: str, commit: str) -> PublishedPreview:
        """The thread's preview (its prefix, only what changed sent) and, where previews have their own
        origins, the change's own: a manifest of content-addressed blobs (``workflows/site_manifests.py``),
        so a one-file change of a big site sends one file, one blob and two small manifests: the first three
        at once, the thread's manifest after them."""
        prefix = previews.thread_prefix(project_id, thread_id)  # validates: ids become key prefixes
        files = _site(site_dir)
        url, version_url = self.urls(project_id, thread_id, commit)
        thread_key = site_manifests.thread_manifest_key(project_id, thread_id)
        manifest = SiteManifest(
            files={relative: Entry(md5=md5, type=content_type_of(relative)) for relative, (_, md5) in files.items()},
            blobs=bool(version_url),
        )
        body = manifest.model_dump_json().encode()
        version_key = site_manifests.version_manifest_key(project_id, commit) if version_url else ""
        # Where the change has its own manifest, the thread's only names it.
        thread_body = SiteManifest(files={}, blobs=True, sameAs=version_key).model_dump_json().encode()
        try:
            known = self._manifest(thread_key)
            changed, stale = self._plan(prefix, files, known)
            puts = list(changed)
            if version_key:
                # The change's own preview (immutable; a retry writes the same again). Its manifest may land
                # before its blobs: nobody has its URL until the reply, which waits for all of them.
                puts += self._blobs_to_send(project_id, files, known)
                puts.append(_Put(version_key, body, _JSON, IMMUTABLE))
            self._send(puts)
            self._delete(stale)
            if version_key:
                _CHANGE_MANIFESTS.keep(version_key, manifest)
            # Last: it says what the prefix (and the blob store) now hold, for the next publish.
            self._send([_Put(thread_key, thread_body if version_key else body, _JSON)])
        except (ClientError, BotoCoreError) as exc:
            raise PreviewUploadError(f"Could not upload the preview: {exc}") from exc
        return PublishedPreview(url=url, version_url=version_url, uploaded=len(changed), deleted=len(stale))

    def _blobs_to_send(
        self, project_id: str, files: dict[str, tuple[str, str]], known: SiteManifest | None
    ) -> list[_Put]:
        """The blobs of ``files`` the project's blob store does not hold yet (one per content)."""
        if known is not None and known.blobs:
            stored = {entry.md5 for entry in known.files.values()}
        else:
            stored = self._blob_md5s(project_id)
        needed: dict[str, str] = {}
        for path, md5 in files.values():
            if md5 not in stored:
                needed.setdefault(md5, path)
        return [
            _Put(site_manifests.blob_key(project_id, md5), Path(path), content_type_of(path), IMMUTABLE)
            for md5, path in needed.items()
        ]

    def _blob_md5s(self, project_id: str) -> set[str]:
        prefix = site_manifests.blob_key(project_id, "0" * 32)[:-32]
        return {key[len(prefix) :] for key in self._etags(prefix)}

    def _manifest(self, key: str) -> SiteManifest | None:
        """The thread's manifest as the last publish wrote it (through the change's it names, if it names
        one); None when there is none or it is unreadable (the bucket is listed instead)."""
        get = s3_getter(self.s3, self.bucket)
        found = get(key)
        if found is None:
            return None
        try:
            manifest = SiteManifest.model_validate_json(found[0])
        except ValidationError:
            return None
        if manifest.sameAs:
            return _CHANGE_MANIFESTS.get(manifest.sameAs, get)
        return manifest

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

    def _send(self, puts: list[_Put]) -> None:
        """All of ``puts`` at once (a pool of ``_UPLOAD_WORKERS``); the first failure is raised."""
        if not puts:
            return
        s3 = self.s3
        if len(puts) == 1:
            self._put(s3, puts[0])
            return
        with ThreadPoolExecutor(max_workers=min(_UPLOAD_WORKERS, len(puts))) as pool:
            for future in [pool.submit(self._put, s3, put) for put in puts]:
                future.result()

    def _put(self, s3: Any, put: _Put) -> None:
        opened = nullcontext(put.body) if isinstance(put.body, bytes) else put.body.open("rb")
        with opened as body:  # a file is streamed, never read whole into memory
            s3.put_object(
                Bucket=self.bucket,
                Key=put.key,
                Body=body,
                ContentType=put.content_type,
                CacheControl=put.cache_control,
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

    def md5(self, path: Path | str, stat: os.stat_result | None = None) -> str:
        """``stat``: what the caller's walk just read of ``path`` (else it is read here)."""
        name = str(path)
        stat = stat if stat is not None else os.stat(name)
        seen = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        with self._lock:
            kept = self._kept.get(name)
        if kept is not None and kept[0] == seen and kept[1] - stat.st_mtime_ns > self.RACY_NS:
            return kept[2]
        hashed_at = time.time_ns()
        digest = _md5(path)
        with self._lock:
            if len(self._kept) >= self.LIMIT:
                self._kept.clear()
            self._kept[name] = (seen, hashed_at, digest)
        return digest


_DIGESTS = _Digests()
# The changes' manifests this worker wrote or read lately: a thread's next publish starts from its last.
_CHANGE_MANIFESTS = ChangeManifests()


def _md5(path: Path | str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
