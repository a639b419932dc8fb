"""Where previews live and how a URL finds its files: the mapping the local preview server and CloudFront's
viewer-request function both implement."""

from __future__ import annotations

import pytest

from workflows import previews


def test_a_thread_and_a_change_each_have_their_own_origin_and_prefix() -> None:
    assert previews.thread_label("bakery", "abcdefgh") == "abcdefgh-bakery"
    assert previews.commit_label("bakery", "3F2A9C41D0B7E6A5") == "3f2a9c4-bakery"
    assert previews.prefix_for_label("abcdefgh-bakery") == "previews/bakery/abcdefgh/"
    assert previews.prefix_for_label("3f2a9c4-bakery") == "previews/bakery/commits/3f2a9c4/"
    assert previews.prefix_for_label("abcdefgh-harbour-bakery") == "previews/harbour-bakery/abcdefgh/"
    assert previews.url("http://{label}.preview.localhost:8123", "abcdefgh-bakery") == (
        "http://abcdefgh-bakery.preview.localhost:8123/"
    )


@pytest.mark.parametrize(
    "label",
    ["bakery", "abcdefgh-", "-bakery", "abcdefg1-bakery", "abcdef-bakery", "3f2a9c41-bakery", "abcdefgh-Bad_Name", ""],
)
def test_a_label_that_names_no_preview_maps_nowhere(label: str) -> None:
    assert previews.prefix_for_label(label) is None


@pytest.mark.parametrize(
    "host,label",
    [
        ("abcdefgh-bakery.preview.localhost:8123", "abcdefgh-bakery"),
        ("ABCDEFGH-bakery.Preview.Localhost", "abcdefgh-bakery"),
        ("abcdefgh-bakery.previews.example.com", None),
        ("a.b.preview.localhost", None),
        ("preview.localhost", None),
        ("evil.test", None),
        ("[::1]:8123", None),
    ],
)
def test_hosts_name_their_label(host: str, label: str | None) -> None:
    assert previews.label_of_host(host, "preview.localhost") == label


@pytest.mark.parametrize(
    "path,keys",
    [
        ("/", ["index.html"]),
        ("/?utm=1", ["index.html"]),
        ("/contact/", ["contact/index.html"]),
        ("/contact", ["contact", "contact/index.html", "contact.html"]),
        ("/_astro/index.BdPt1x3A.css", ["_astro/index.BdPt1x3A.css"]),
        ("/blog/2026/hello%20world/", ["blog/2026/hello world/index.html"]),
        ("/a//b/./c.js", ["a/b/c.js"]),
        ("/../secret", []),
        ("/%2e%2e/secret", []),
        ("/a/../../b", []),
        ("/x%00.html", []),
    ],
)
def test_paths_resolve_like_a_static_host(path: str, keys: list[str]) -> None:
    assert previews.keys_for_path(path) == keys


def test_ids_that_could_escape_their_prefix_are_refused() -> None:
    for project, thread in [("../x", "abcdefgh"), ("bakery", "../abcdef"), ("bakery", "ABCDEFGH")]:
        with pytest.raises(ValueError):
            previews.thread_prefix(project, thread)
    with pytest.raises(ValueError):
        previews.commit_prefix("bakery", "not-hex")
