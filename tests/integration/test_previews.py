"""Previews of real sites render: a real generator's output (tests/fixtures/sites/vite), published by the
worker's publisher and served by the embedded stack's preview origin, with every root-absolute link followed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from container.worker.preview import S3PreviewPublisher
from tests.conftest import FIXTURES
from workflows import names
from workflows.aws import client
from workflows.local import operations
from workflows.local.stack import StackInfo

pytestmark = pytest.mark.integration

VITE_DIST = FIXTURES / "sites" / "vite" / "dist"
LINK = re.compile(r"""(?:href|src)=["']([^"']+)["']|url\(([^)]+)\)""")


def _links(text: str) -> set[str]:
    return {(a or b).strip("'\" ") for a, b in LINK.findall(text)} - {""}


def test_a_generated_site_renders_at_its_own_origin_links_and_all(info: StackInfo, tmp_path: Path) -> None:
    site = tmp_path / "dist"
    shutil.copytree(VITE_DIST, site)
    publisher = S3PreviewPublisher(names.PREVIEW_BUCKET.local_name, info.previewOrigin, s3_client=client("s3"))
    published = publisher.publish(site, "harbour", "vtbk2m4n", "c0ffee1" + "0" * 33)
    url = published.url
    assert re.fullmatch(r"http://vtbk2m4n-harbour\.preview\.localhost:\d+/", url)
    assert re.fullmatch(r"http://c0ffee1-harbour\.preview\.localhost:\d+/", published.version_url)
    assert operations.fetch_preview(published.version_url + "contact/").status_code == 200

    seen: dict[str, int] = {}
    pending = [url]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        response = operations.fetch_preview(current)
        seen[current] = response.status_code
        assert response.status_code == 200, current
        kind = response.headers["Content-Type"]
        assert kind.split(";")[0] in {"text/html", "text/css", "text/javascript", "image/svg+xml"}, (current, kind)
        if kind.startswith(("text/html", "text/css")):
            for link in _links(response.text):
                target = urljoin(current, link)
                if urlsplit(target).netloc == urlsplit(url).netloc:  # the site's own links only
                    pending.append(target)
    paths = {urlsplit(u).path for u in seen}
    # Every kind of root-absolute link the generator wrote resolved inside the preview.
    assert {"/", "/contact/", "/favicon.svg"} <= paths
    assert any(p.startswith("/assets/main-") and p.endswith(".js") for p in paths)
    assert any(p.startswith("/assets/crust-") for p in paths)  # referenced from the CSS, not the HTML

    assert "Call us on 01234 567890, or visit" in operations.fetch_preview(url + "contact").text  # no slash
    missing = operations.fetch_preview(url + "no/such/page/")
    assert missing.status_code == 404 and "Sorry, that page is not here." in missing.text  # the site's 404.html


def test_a_host_that_names_no_preview_gets_nothing(info: StackInfo) -> None:
    origin = info.previewOrigin.replace("{label}", "nothing-here-at-all")
    assert operations.fetch_preview(origin + "/").status_code == 404
