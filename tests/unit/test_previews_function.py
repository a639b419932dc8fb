"""CloudFront's viewer-request function (cdk/parts/previews.py) maps preview hosts and paths as
workflows.previews does, run under Node (the JavaScript CloudFront runs) against the Python mapping."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from cdk.parts.previews import preview_function_code
from workflows import previews

NODE = shutil.which("node")
DOMAIN = "previews.example.com"
CASES = [
    ("abcdefgh-bakery", "/"),
    ("abcdefgh-bakery", "/contact/"),
    ("abcdefgh-bakery", "/contact"),
    ("abcdefgh-bakery", "/assets/main-CbXyAdVn.js"),
    ("abcdefgh-harbour-bakery", "/blog/2026/post/"),
    ("3f2a9c4-bakery", "/"),
    ("3f2a9c4-bakery", "/favicon.svg"),
    ("live-bakery", "/"),  # the live site PUBLISH deploys
    ("live-harbour-bakery", "/contact/"),
]
NOT_PREVIEWS = [
    "bakery",
    "abcdefgh-",
    "abcdef-bakery",
    "3f2a9c41-bakery",
    "abcdefgh-Bad_name",
    "x.abcdefgh-bakery",
    "live-",
    "live--bakery",
]


def _run(domain: str, requests: list[tuple[str, str]]) -> list[dict[str, object]]:
    harness = (
        preview_function_code(domain)
        + "\nconst cases = JSON.parse(process.argv[1]);\n"
        + "console.log(JSON.stringify(cases.map(([host, uri]) => "
        + "handler({request: {uri: uri, headers: {host: {value: host}}}}))));\n"
    )
    done = subprocess.run(
        [str(NODE), "-e", harness, json.dumps(requests)], capture_output=True, text=True, timeout=30, check=True
    )
    return list(json.loads(done.stdout))


@pytest.mark.skipif(NODE is None, reason="needs Node to run CloudFront's JavaScript (Debian: nodejs)")
def test_preview_hosts_reach_the_prefix_and_file_python_names() -> None:
    answers = _run(DOMAIN, [(f"{label}.{DOMAIN}", path) for label, path in CASES])
    for (label, path), answer in zip(CASES, answers, strict=True):
        prefix = previews.prefix_for_label(label)
        assert prefix is not None
        keys = previews.keys_for_path(path)
        # CloudFront cannot try several objects: an extensionless path is a directory, its index.html.
        expected = "/" + prefix + (keys[1] if len(keys) == 3 else keys[0])
        assert answer["uri"] == expected, (label, path)


@pytest.mark.skipif(NODE is None, reason="needs Node to run CloudFront's JavaScript (Debian: nodejs)")
def test_hosts_that_name_no_preview_get_404_and_other_hosts_keep_their_path() -> None:
    answers = _run(DOMAIN, [(f"{label}.{DOMAIN}", "/") for label in NOT_PREVIEWS])
    for label, answer in zip(NOT_PREVIEWS, answers, strict=True):
        assert answer.get("statusCode") == 404, label
        assert previews.label_of_host(f"{label}.{DOMAIN}", DOMAIN) is None or previews.prefix_for_label(label) is None
    (other,) = _run(DOMAIN, [("d111111abcdef8.cloudfront.net", "/previews/bakery/abcdefgh/")])
    assert other["uri"] == "/previews/bakery/abcdefgh/index.html"
    (no_domain,) = _run("", [(f"abcdefgh-bakery.{DOMAIN}", "/about")])
    assert no_domain["uri"] == "/about/index.html"
