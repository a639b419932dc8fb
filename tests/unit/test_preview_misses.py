"""A path a preview or live site does not have: its own 404 page, whichever origin serves it (the embedded
stack's preview server, or on AWS the Lambda that CloudFront falls back to when S3 has no object)."""

from __future__ import annotations

import base64

import pytest

from lambdas.preview_misses.handler import handler
from workflows import names, previews
from workflows.aws import client
from workflows.local.operations import LocalLambdaContext
from workflows.preview_misses import not_found, s3_getter

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
