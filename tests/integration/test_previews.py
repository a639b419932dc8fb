"""Previews of real sites render: a real generator's output (tests/fixtures/sites/vite), published by the
worker's publisher and served by the embedded stack's preview origin, with every root-absolute link followed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from container.worker.preview import S3PreviewPublisher
from container.worker.screenshot import VIEWPORT, find_browser
from tests import pngs
from tests.conftest import FIXTURES
from tests.gitrepos import seed_origin
from workflows import names, projects
from workflows.adapters.aws import client
from workflows.local import operations
from workflows.local.demo import demo_email
from workflows.local.stack import StackInfo

pytestmark = pytest.mark.integration

VITE_DIST = FIXTURES / "sites" / "vite" / "dist"
LINK = re.compile(r"""(?:href|src)=["']([^"']+)["']|url\(([^)]+)\)""")


def _links(text: str) -> set[str]:
    return {(a or b).strip("'\" ") for a, b in LINK.findall(text)} - {""}


def _crawl(url: str) -> dict[str, int]:
    """Every URL of the preview's own origin reachable from ``url`` through href, src and CSS url(), resolved
    as a browser resolves them, with its status."""
    seen: dict[str, int] = {}
    pending = [url]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        response = operations.fetch_preview(current)
        seen[current] = response.status_code
        kind = response.headers.get("Content-Type", "")
        assert response.status_code != 200 or kind.split(";")[0] in {
            "text/html",
            "text/css",
            "text/javascript",
            "image/svg+xml",
        }, (current, kind)
        if response.status_code == 200 and kind.startswith(("text/html", "text/css")):
            for link in _links(response.text):
                target = urljoin(current, link)
                if urlsplit(target).netloc == urlsplit(url).netloc:  # the site's own links only
                    pending.append(target)
    return seen


def test_a_generated_site_renders_at_its_own_origin_links_and_all(info: StackInfo, tmp_path: Path) -> None:
    site = tmp_path / "dist"
    shutil.copytree(VITE_DIST, site)
    publisher = S3PreviewPublisher(names.PREVIEW_BUCKET.local_name, info.previewOrigin, s3_client=client("s3"))
    published = publisher.publish(site, "harbour", "vtbk2m4n", "c0ffee1" + "0" * 33)
    url = published.url
    assert re.fullmatch(r"http://vtbk2m4n-harbour\.preview\.localhost:\d+/", url)
    assert re.fullmatch(r"http://c0ffee1-harbour\.preview\.localhost:\d+/", published.version_url)
    assert operations.fetch_preview(published.version_url + "contact/").status_code == 200

    seen = _crawl(url)
    assert all(status == 200 for status in seen.values()), seen
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


NODE_BUILD = """const fs = require("fs");
const page = (title, body) => `<!doctype html><html><head><title>${title}</title>
<link rel="stylesheet" href="/assets/site.css"><link rel="icon" href="/favicon.svg"></head>
<body><nav><a href="/">Home</a> <a href="/contact/">Contact</a></nav>${body}
<script type="module" src="/assets/site.js"></script></body></html>`;
fs.mkdirSync("dist/assets", { recursive: true });
fs.mkdirSync("dist/contact", { recursive: true });
const pages = [["pages/index.html", "dist/index.html"], ["pages/contact.html", "dist/contact/index.html"]];
for (const [source, target] of pages) {
  fs.writeFileSync(target, page("Harbour Bakery", fs.readFileSync(source, "utf8")));
}
fs.writeFileSync("dist/assets/site.css", "body{background:url(/assets/crust.svg)}");
fs.writeFileSync("dist/assets/crust.svg", '<svg xmlns="http://www.w3.org/2000/svg"/>');
fs.writeFileSync("dist/assets/site.js", "document.body.dataset.ready = 'yes';");
fs.writeFileSync("dist/favicon.svg", '<svg xmlns="http://www.w3.org/2000/svg"/>');
"""


def _node_site_repository(where: Path) -> Path:
    bare = where / "node-site.git"
    seed_origin(
        bare,
        {
            "package.json": json.dumps({"name": "harbour", "private": True, "scripts": {"build": "node build.js"}}),
            "build.js": NODE_BUILD,
            "pages/index.html": "<h1>Harbour Bakery</h1><p>Call us on 01234 567890.</p>",
            "pages/contact.html": "<h1>Contact</h1><p>Call us, or visit 1 Quay Street.</p>",
            ".gitignore": "dist/\nnode_modules/\n",
        },
    )
    return bare


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm (Debian: npm) to run the site's build script")
def test_a_node_site_builds_without_configuration_and_its_preview_resolves_every_asset(
    info: StackInfo, tmp_path: Path
) -> None:
    repo = _node_site_repository(tmp_path)
    # No build command, no output folder: package.json's build script and the dist/ it writes are found.
    project = projects.make_project("harbour-node", str(repo), ["owner@example.com"])
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)
    raw = demo_email("harbour-node@mail.webordinary.test", 'replace "Call us" with "Ring us"', "owner@example.com")
    outcome = operations.deliver_email(info, raw)
    described = operations.wait_for_execution(client("stepfunctions"), outcome.executionArn or "", timeout=120)
    assert described["status"] == "SUCCEEDED", operations.trace(client("stepfunctions"), outcome.executionArn or "")
    result = json.loads(described["output"])["result"]
    seen = _crawl(result["versionUrl"])
    assert all(status == 200 for status in seen.values()), seen
    paths = {urlsplit(u).path for u in seen}
    assert {"/", "/contact/", "/assets/site.css", "/assets/crust.svg", "/assets/site.js", "/favicon.svg"} <= paths
    assert "Ring us" in operations.fetch_preview(result["previewUrl"] + "contact/").text


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm (Debian: npm) to run the site's build script")
@pytest.mark.skipif(find_browser() is None, reason="no Chromium on this machine (CI installs Debian's chromium)")
def test_the_reply_shows_pictures_of_the_pages_the_change_touched(info: StackInfo, tmp_path: Path) -> None:
    repo = _node_site_repository(tmp_path)
    project = projects.make_project("harbour-shots", str(repo), ["owner@example.com"])
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)
    raw = demo_email("harbour-shots@mail.webordinary.test", 'replace "Call us" with "Ring us"', "owner@example.com")
    outcome = operations.deliver_email(info, raw)
    described = operations.wait_for_execution(client("stepfunctions"), outcome.executionArn or "", timeout=120)
    assert described["status"] == "SUCCEEDED", operations.trace(client("stepfunctions"), outcome.executionArn or "")
    result = json.loads(described["output"])["result"]
    # pages/index.html and pages/contact.html changed: the two built pages they make.
    assert sorted(shot["page"] for shot in result["screenshots"]) == ["/", "/contact/"]
    assert result["timings"]["screenshotMs"] > 0

    # ...and the same pages on the live version (the default branch's build), before the change.
    assert all(shot["beforeKey"].endswith("-before.png") for shot in result["screenshots"])

    (reply,) = [r for r in operations.outbox(info) if r["threadId"] == outcome.threadId]
    assert len(reply["images"]) == 4
    for content_id, png in reply["images"].items():
        assert pngs.size(png) == VIEWPORT
        assert f'src="cid:{content_id}"' in reply["html"]
    assert f'href="{result["versionUrl"]}contact/"' in reply["html"]
    assert "Pictures of the changed pages, before and after the change, are in this email." in reply["text"]
