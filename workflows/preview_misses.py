"""A preview's (or live site's) answer to a path it does not have: the site's own ``404.html`` with status
404, or a plain "Not found." when the site has none.

Shared by the embedded stack's preview server and, on AWS, the Lambda behind CloudFront's origin failover:
S3 answers 403/404 for an object that is not there, and CloudFront then asks ``lambdas/preview_misses`` for
the same (already rewritten) path. The site's page is found from the key alone (``previews.root_of_key``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from workflows import previews

# key -> (body, Content-Type), or None when there is no such object.
GetObject = Callable[[str], tuple[bytes, str] | None]
_MISSING_CODES = {"NoSuchKey", "404", "NotFound", "403", "AccessDenied"}


@dataclass(frozen=True)
class Page:
    status: int
    content_type: str
    body: bytes
    cache_control: str = "no-cache"


def not_found(key: str, get: GetObject) -> Page:
    """The answer for ``key``, which the bucket does not hold."""
    page_key = previews.not_found_page_key(key)
    found = get(page_key) if page_key is not None else None
    if found is None:
        return Page(404, "text/plain; charset=utf-8", b"Not found.\n")
    body, content_type = found
    return Page(404, content_type or "text/html; charset=utf-8", body)


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
