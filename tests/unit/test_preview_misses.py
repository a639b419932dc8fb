"""A path a preview or live site does not have: its own 404 page, whichever origin serves it (the embedded
stack's preview server, or on AWS the Lambda that CloudFront falls back to when S3 has no object)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from lambdas.preview_misses.handler import MAX_INLINE_BYTES, handler
from workflows import names, previews, site_manifests
from workflows.adapters.aws import client
from workflows.adapters.preview_misses import answer, not_found, s3_getter
from workflows.local.operations import LocalLambdaContext
from workflows.site_manifests import Entry, SiteManifest

SITE_404 = b"<!doctype html><h1>Lost? Try the menu.</h1>"


@pytest.mark.parametrize(
    ("key", "root"),
    [
        ("previews/bakery/ab3k9x2m/about/index.html", "previews/bakery/ab3k9x2m/"),
        ("previews/bakery/commits/abc1234/_astro/x.css", "previews/bakery/commits/abc1234/"),
        ("sites/bakery/contact/index.html", "sites/bakery/"),
        ("previews/bakery/ab3k9x2m", None),  # not inside a preview
        ("screenshots/bakery/abc1234/1.png", None),  # pictures are not a site
        ("previews/bakery/../florist/ab3k9x2m/x", None),
        ("previews/Bakery/ab3k9x2m/x", None),
        ("previews/bakery/commits/abc12345/x", None),
    ],
)
def test_a_key_names_the_site_it_belongs_to(key: str, root: str | None) -> None:
    assert previews.root_of_key(key) == root
    assert previews.not_found_page_key(key) == (root + "404.html" if root else None)


def test_a_miss_is_the_sites_own_404_page_or_plain_words() -> None:
    stored = {"previews/bakery/ab3k9x2m/404.html": (SITE_404, "text/html; charset=utf-8")}
    page = not_found("previews/bakery/ab3k9x2m/nope/index.html", stored.get)
    assert (page.status, page.body, page.content_type) == (404, SITE_404, "text/html; charset=utf-8")
    other = not_found("previews/bakery/bcdefghj/nope/index.html", stored.get)  # another thread: not its page
    assert (other.status, other.body) == (404, b"Not found.\n")
    assert not_found("screenshots/x", stored.get).body == b"Not found.\n"


def test_the_fallback_origin_answers_from_the_bucket(in_process_aws: None) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket=names.PREVIEW_BUCKET.local_name)
    s3.put_object(
        Bucket=names.PREVIEW_BUCKET.local_name, Key="sites/bakery/404.html", Body=SITE_404, ContentType="text/html"
    )
    context = LocalLambdaContext(function_name="webordinary-preview-misses")
    answer = handler({"rawPath": "/sites/bakery/no%20such/index.html", "headers": {}}, context)
    assert answer["statusCode"] == 404 and answer["headers"]["Content-Type"] == "text/html"
    assert base64.b64decode(answer["body"]) == SITE_404 and answer["isBase64Encoded"] is True
    plain = handler({"rawPath": "/previews/bakery/ab3k9x2m/x.html"}, context)
    assert plain["statusCode"] == 404 and base64.b64decode(plain["body"]) == b"Not found.\n"
    get = s3_getter(s3, names.PREVIEW_BUCKET.local_name)
    assert get("sites/bakery/404.html") == (SITE_404, "text/html") and get("sites/bakery/none") is None


def _manifest_store(files: dict[str, bytes], commit: str = "abc1234") -> dict[str, tuple[bytes, str]]:
    entries = {}
    stored: dict[str, tuple[bytes, str]] = {}
    for relative, body in files.items():
        md5 = hashlib.md5(body).hexdigest()
        entries[relative] = Entry(md5=md5, type="text/html; charset=utf-8")
        stored[site_manifests.blob_key("bakery", md5)] = (body, "application/octet-stream")
    manifest = SiteManifest(files=entries, blobs=True)
    # (A change's manifest never changes, so the answerer keeps it: each test uses its own commit.)
    stored[site_manifests.version_manifest_key("bakery", commit)] = (manifest.model_dump_json().encode(), "")
    return stored


def test_a_changes_own_preview_is_answered_from_its_manifest() -> None:
    stored = _manifest_store({"index.html": b"<p>Call us</p>", "about/index.html": b"about", "404.html": SITE_404})
    root = "previews/bakery/commits/abc1234/"
    page = answer(root + "index.html", stored.get)
    assert (page.status, page.body, page.content_type) == (200, b"<p>Call us</p>", "text/html; charset=utf-8")
    assert page.cache_control == "public, max-age=31536000, immutable"
    assert answer(root + "about", stored.get, ["about", "about/index.html", "about.html"]).body == b"about"
    missing = answer(root + "nope/index.html", stored.get)
    assert (missing.status, missing.body) == (404, SITE_404)
    # A change published before manifests: no manifest, so the 404 page under its prefix, if any.
    assert answer("previews/bakery/commits/def5678/x.html", stored.get).body == b"Not found.\n"


def test_the_fallback_origin_sends_a_blob_too_big_to_return_through_s3(in_process_aws: None) -> None:
    s3 = client("s3")
    bucket = names.PREVIEW_BUCKET.local_name
    s3.create_bucket(Bucket=bucket)
    video = b"\0" * (MAX_INLINE_BYTES + 1)
    for key, (body, kind) in _manifest_store({"index.html": b"hi", "intro.mp4": video}, "fed9876").items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=kind)
    context = LocalLambdaContext(function_name="webordinary-preview-misses")
    page = handler({"rawPath": "/previews/bakery/commits/fed9876/index.html"}, context)
    assert page["statusCode"] == 200 and base64.b64decode(page["body"]) == b"hi"
    big = handler({"rawPath": "/previews/bakery/commits/fed9876/intro.mp4"}, context)
    assert big["statusCode"] == 302 and f"blobs/bakery/{hashlib.md5(video).hexdigest()}" in big["headers"]["Location"]
