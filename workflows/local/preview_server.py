"""The embedded stack's preview origin: what CloudFront and its viewer-request function do on AWS.

``http://{label}.preview.localhost:{port}/...`` -> the preview bucket's ``previews/...`` prefix that the label
names (``workflows.previews``), read from the emulator's S3 with the stored Content-Type and Cache-Control.
A directory URL serves its ``index.html``; a path the site lacks serves the site's own ``404.html`` (status
404) when it has one, as CloudFront's fallback origin does on AWS (``workflows/adapters/preview_misses.py``).
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.exceptions import ClientError

from workflows import previews
from workflows.adapters.preview_misses import answer, not_found, s3_getter

log = logging.getLogger("webordinary.previews")
PREVIEW_DOMAIN = "preview.localhost"
SITE_DOMAIN = "site.localhost"  # the live sites: {project}.site.localhost -> sites/{project}/


class PreviewServer:
    def __init__(
        self, s3: Any, bucket: str, domain: str = PREVIEW_DOMAIN, port: int = 0, site_domain: str = SITE_DOMAIN
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.domain = domain
        self.site_domain = site_domain
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.answer(self, body=True)

            def do_HEAD(self) -> None:
                server.answer(self, body=False)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("preview %s", format % args)

        self._http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._http.daemon_threads = True
        self.port = int(self._http.server_address[1])
        self._thread = threading.Thread(target=self._http.serve_forever, name="preview-server", daemon=True)

    @property
    def origin_template(self) -> str:
        """What the worker builds preview URLs from (``{label}`` is the preview's host label)."""
        return f"http://{previews.LABEL_PLACEHOLDER}.{self.domain}:{self.port}"

    @property
    def site_template(self) -> str:
        """What the worker builds live-site URLs from (``{label}`` is the project id)."""
        return f"http://{previews.LABEL_PLACEHOLDER}.{self.site_domain}:{self.port}"

    def _prefix(self, host: str) -> str | None:
        label = previews.label_of_host(host, self.domain)
        if label:
            return previews.prefix_for_label(label)
        project = previews.label_of_host(host, self.site_domain)
        try:
            return previews.site_prefix(project) if project else None
        except ValueError:
            return None

    def start(self) -> PreviewServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def _get(self, key: str) -> dict[str, Any] | None:
        try:
            response: dict[str, Any] = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        return response

    def answer(self, request: BaseHTTPRequestHandler, *, body: bool) -> None:
        prefix = self._prefix(request.headers.get("Host", ""))
        if prefix is None:
            self._send(request, 404, "text/plain; charset=utf-8", b"No preview here.\n", "no-store", body)
            return
        candidates = previews.keys_for_path(request.path)
        for relative in candidates:
            found = self._get(prefix + relative)
            if found is not None:
                data = found["Body"].read()
                kind = found.get("ContentType") or "application/octet-stream"
                self._send(request, 200, kind, data, found.get("CacheControl") or "no-cache", body)
                return
        # What CloudFront's fallback origin (lambdas/preview_misses) answers on AWS: a change's own preview
        # from its manifest, else the site's 404 page.
        get = s3_getter(self.s3, self.bucket)
        if candidates:
            page = answer(prefix + candidates[0], get, candidates)
        else:
            page = not_found(prefix + previews.NOT_FOUND_PAGE, get)
        self._send(request, page.status, page.content_type, page.body, page.cache_control, body)

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, kind: str, data: bytes, cache: str, body: bool) -> None:
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(data)))
        request.send_header("Cache-Control", cache)
        request.end_headers()
        if body:
            request.wfile.write(data)
