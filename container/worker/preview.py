"""Publishing a built site as a thread's preview: ``previews/{project}/{thread}/...`` in S3 (where and at which
URL: ``workflows/previews.py``)."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from workflows import aws, previews
from workflows.errors import PreviewUploadError

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


class PreviewPublisher(Protocol):
    def publish(self, site_dir: Path, project_id: str, thread_id: str) -> str: ...


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
    def __init__(self, bucket: str, base_url: str, s3_client: Any = None) -> None:
        self.bucket = bucket
        self.base_url = base_url
        self._s3 = s3_client

    @property
    def s3(self) -> Any:
        return self._s3 if self._s3 is not None else aws.client("s3")

    def publish(self, site_dir: Path, project_id: str, thread_id: str) -> str:
        prefix = previews.thread_prefix(project_id, thread_id)  # validates: ids become key prefixes
        files = dict(site_files(site_dir))
        try:
            self._upload(prefix, files)
            self._delete_stale(prefix, {prefix + relative for relative in files})
        except (ClientError, BotoCoreError) as exc:
            raise PreviewUploadError(f"Could not upload the preview: {exc}") from exc
        if previews.LABEL_PLACEHOLDER in self.base_url:
            return previews.url(self.base_url, previews.thread_label(project_id, thread_id))
        return f"{self.base_url.rstrip('/')}/{project_id}/{thread_id}/index.html"

    def _upload(self, prefix: str, files: dict[str, Path]) -> None:
        s3 = self.s3
        with ThreadPoolExecutor(max_workers=_UPLOAD_WORKERS) as pool:
            futures = [pool.submit(self._put, s3, prefix + relative, path) for relative, path in files.items()]
            for future in futures:
                future.result()  # re-raises the first failure

    def _put(self, s3: Any, key: str, path: Path) -> None:
        with path.open("rb") as body:
            s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type(path),
                # Previews change under the same URL with every message; never serve a stale one.
                CacheControl="no-cache",
            )

    def _delete_stale(self, prefix: str, keep: set[str]) -> None:
        s3 = self.s3
        stale: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            stale.extend(item["Key"] for item in page.get("Contents", []) if item["Key"] not in keep)
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
