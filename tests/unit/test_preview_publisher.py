"""Publishing a build as previews (moto's S3 in process): only what changed is uploaded, what the build no
longer has is removed, and each change gets its own copy that later changes never touch."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from container.worker.preview import IMMUTABLE, S3PreviewPublisher
from workflows.adapters.aws import client
from workflows.local.operations import fetch_preview
from workflows.local.preview_server import PreviewServer
from workflows.site_manifests import Entry, SiteManifest

BUCKET = "previews-test"
THREAD, OTHER = "ab3k9x2m", "cd5h7j8k"
ORIGIN = "http://{label}.preview.localhost:8123"
C1, C2 = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


@pytest.fixture
def s3(in_process_aws: None) -> object:
    """The bucket lives as long as moto does (the module): each test uses its own project's prefix."""
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def _site(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return root


def _manifest(s3: object, key: str) -> SiteManifest:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()  # type: ignore[attr-defined]
    return SiteManifest.model_validate_json(body)


def _keys(s3: object, prefix: str) -> dict[str, dict[str, str]]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])  # type: ignore[attr-defined]
    out = {}
    for item in listed:
        head = s3.head_object(Bucket=BUCKET, Key=item["Key"])  # type: ignore[attr-defined]
        out[item["Key"][len(prefix) :]] = {"type": head["ContentType"], "cache": head.get("CacheControl", "")}
    return out


def test_each_change_is_published_twice_and_only_what_changed_is_sent(s3: object, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"previews/acme/{OTHER}/index.html", Body=b"other")  # type: ignore[attr-defined]
    s3.put_object(Bucket=BUCKET, Key=f"previews/acme/{THREAD}/old.html", Body=b"old")  # type: ignore[attr-defined]
    first_site = _site(
        tmp_path / "one",
        {"index.html": b"<p>Call us</p>", "css/site.css": b"p{}", "logo.png": b"\x89PNG", "contact/index.html": b"c"},
    )
    (first_site / "leak").symlink_to(tmp_path / "secret.txt")
    (tmp_path / "secret.txt").write_text("no")
    publisher = S3PreviewPublisher(BUCKET, ORIGIN, s3_client=s3)

    first = publisher.publish(first_site, "acme", THREAD, C1)
    assert first.url == f"http://{THREAD}-acme.preview.localhost:8123/"
    assert first.version_url == "http://1111111-acme.preview.localhost:8123/"
    assert (first.uploaded, first.deleted) == (4, 1)
    stable = _keys(s3, f"previews/acme/{THREAD}/")
    assert set(stable) == {"index.html", "css/site.css", "logo.png", "contact/index.html"}  # no symlink, no old
    assert stable["index.html"] == {"type": "text/html; charset=utf-8", "cache": "no-cache"}
    assert stable["logo.png"]["type"] == "image/png"
    # The change's own preview is a manifest of content-addressed blobs, not a copy.
    assert _keys(s3, "previews/acme/commits/") == {}
    version = _manifest(s3, "manifests/acme/1111111.json")
    assert set(version.files) == set(stable) and version.blobs
    assert version.files["css/site.css"] == Entry(md5=hashlib.md5(b"p{}").hexdigest(), type="text/css; charset=utf-8")
    blobs = _keys(s3, "blobs/acme/")
    assert set(blobs) == {entry.md5 for entry in version.files.values()}
    assert all(blob["cache"] == IMMUTABLE for blob in blobs.values())

    # The next change: one page edited, one removed. Only the edited page travels; the first change's copy stays.
    second_site = _site(
        tmp_path / "two", {"index.html": b"<p>Ring us</p>", "css/site.css": b"p{}", "logo.png": b"\x89PNG"}
    )
    second = publisher.publish(second_site, "acme", THREAD, C2)
    assert (second.uploaded, second.deleted) == (1, 1)
    assert set(_keys(s3, f"previews/acme/{THREAD}/")) == {"index.html", "css/site.css", "logo.png"}
    body = s3.get_object(Bucket=BUCKET, Key=f"previews/acme/{THREAD}/index.html")["Body"].read()  # type: ignore[attr-defined]
    assert body == b"<p>Ring us</p>"
    assert set(_manifest(s3, "manifests/acme/1111111.json").files) == {
        "index.html",
        "css/site.css",
        "logo.png",
        "contact/index.html",
    }
    assert set(_manifest(s3, "manifests/acme/2222222.json").files) == {"index.html", "css/site.css", "logo.png"}
    assert len(_keys(s3, "blobs/acme/")) == len(blobs) + 1  # only the edited page's new content
    assert set(_keys(s3, f"previews/acme/{OTHER}/")) == {"index.html"}

    # Served at their own origins: each change's preview still shows what it was, the missing path its 404.
    server = PreviewServer(s3, BUCKET, port=0).start()
    try:
        origin = f"http://{{}}-acme.preview.localhost:{server.port}"
        assert fetch_preview(origin.format("1111111") + "/").text == "<p>Call us</p>"
        assert fetch_preview(origin.format("2222222") + "/").text == "<p>Ring us</p>"
        assert fetch_preview(origin.format("1111111") + "/contact/").text == "c"
        css = fetch_preview(origin.format("1111111") + "/css/site.css")
        assert css.headers["Content-Type"] == "text/css; charset=utf-8" and css.headers["Cache-Control"] == IMMUTABLE
        assert fetch_preview(origin.format("2222222") + "/contact/").status_code == 404
    finally:
        server.stop()

    # A retry of the same change sends nothing.
    again = publisher.publish(second_site, "acme", THREAD, C2)
    assert (again.uploaded, again.deleted) == (0, 0)


def test_without_per_preview_origins_previews_are_paths_and_have_no_version_copy(s3: object, tmp_path: Path) -> None:
    site = _site(tmp_path / "s", {"index.html": b"hi"})
    published = S3PreviewPublisher(BUCKET, "https://p.test/previews/", s3_client=s3).publish(site, "beta", THREAD, C1)
    assert published.url == f"https://p.test/previews/beta/{THREAD}/index.html" and published.version_url == ""
    assert set(_keys(s3, "previews/beta/")) == {f"{THREAD}/index.html"}


def test_the_live_site_is_deployed_incrementally_at_its_own_origin(s3: object, tmp_path: Path) -> None:
    publisher = S3PreviewPublisher(BUCKET, ORIGIN, s3_client=s3, site_url="http://{label}.site.localhost:8123")
    site = _site(tmp_path / "live", {"index.html": b"<p>Live</p>", "contact/index.html": b"c", "gone.html": b"g"})
    first = publisher.publish_site(site, "livesite")
    assert first.url == "http://livesite.site.localhost:8123/" and (first.uploaded, first.deleted) == (3, 0)
    (site / "gone.html").unlink()
    (site / "index.html").write_bytes(b"<p>Live again</p>")
    second = publisher.publish_site(site, "livesite")
    assert (second.uploaded, second.deleted) == (1, 1)
    assert set(_keys(s3, "sites/livesite/")) == {"index.html", "contact/index.html"}
    assert S3PreviewPublisher(BUCKET, ORIGIN, s3_client=s3).publish_site(site, "livesite").url == ""  # no origin

    server = PreviewServer(s3, BUCKET).start()
    try:
        live = server.site_template.replace("{label}", "livesite")
        assert fetch_preview(live + "/").text == "<p>Live again</p>"
        assert fetch_preview(live + "/contact/").text == "c"
        assert fetch_preview(server.site_template.replace("{label}", "nosuch") + "/").status_code == 404
        assert fetch_preview(server.site_template.replace("{label}", "Bad_Name!") + "/").status_code == 404
    finally:
        server.stop()


def test_a_file_is_hashed_again_only_when_stat_says_it_may_have_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from container.worker import preview

    reads: list[Path] = []
    real = preview._md5
    monkeypatch.setattr(preview, "_md5", lambda path: reads.append(path) or real(path))
    digests = preview._Digests()
    page = tmp_path / "index.html"
    page.write_bytes(b"<p>Call us</p>")
    old = time.time_ns() - 10_000_000_000
    os.utime(page, ns=(old, old))
    assert digests.md5(page) == hashlib.md5(b"<p>Call us</p>").hexdigest()
    assert digests.md5(page) == hashlib.md5(b"<p>Call us</p>").hexdigest() and len(reads) == 1  # not read again
    page.write_bytes(b"<p>Ring us</p>")  # same size, written just now: not trusted from its stat alone
    assert digests.md5(page) == hashlib.md5(b"<p>Ring us</p>").hexdigest() and len(reads) == 2
    assert digests.md5(page) == hashlib.md5(b"<p>Ring us</p>").hexdigest() and len(reads) == 3  # still racy
    page.write_bytes(b"<p>Ring us today</p>")
    os.utime(page, ns=(old, old))  # an older time, but another size
    assert digests.md5(page) == hashlib.md5(b"<p>Ring us today</p>").hexdigest() and len(reads) == 4


def test_the_walk_publishes_the_sites_files_and_nothing_that_leads_out_of_it(tmp_path: Path) -> None:
    from container.worker.preview import site_entries

    site = _site(
        tmp_path / "site",
        {"b.html": b"b", "a.html": b"a", "z/deep/page.html": b"p", ".git/config": b"x", "sub/.git/HEAD": b"x"},
    )
    outside = _site(tmp_path / "outside", {"secret.txt": b"no", "dir/file.txt": b"no"})
    (site / "inside-link.html").symlink_to(site / "a.html")
    (site / "leak.txt").symlink_to(outside / "secret.txt")
    (site / "leak-dir").symlink_to(outside / "dir", target_is_directory=True)
    (site / "inner-dir").symlink_to(site / "z", target_is_directory=True)  # not followed: no page twice
    (site / "dangling.html").symlink_to(site / "missing.html")
    os.mkfifo(site / "pipe")

    entries = list(site_entries(site))

    assert [relative for relative, _, _ in entries] == ["a.html", "b.html", "inside-link.html", "z/deep/page.html"]
    for relative, path, stat in entries:
        assert Path(path) == site / relative and stat.st_size == os.stat(path).st_size


def test_the_threads_manifest_names_the_changes_and_a_new_worker_reads_it_from_s3(
    s3: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from container.worker import preview

    site = _site(tmp_path / "one", {"index.html": b"<p>Call us</p>", "css/site.css": b"p{}"})
    publisher = S3PreviewPublisher(BUCKET, ORIGIN, s3_client=s3)
    publisher.publish(site, "florist", THREAD, C1)

    # The site's list is written once, in the change's manifest; the thread's only names it.
    thread = _manifest(s3, f"manifests/florist/threads/{THREAD}.json")
    assert thread.sameAs == "manifests/florist/1111111.json" and thread.files == {}
    assert set(_manifest(s3, thread.sameAs).files) == {"index.html", "css/site.css"}

    # A worker that never saw the first change (nothing cached) still sends only what changed.
    monkeypatch.setattr(preview, "_CHANGE_MANIFESTS", preview.ChangeManifests())
    (site / "index.html").write_bytes(b"<p>Ring us</p>")
    os.utime(site / "index.html", ns=(time.time_ns() - 10**9, time.time_ns() - 10**9))  # not racy
    second = S3PreviewPublisher(BUCKET, ORIGIN, s3_client=s3).publish(site, "florist", THREAD, C2)
    assert (second.uploaded, second.deleted) == (1, 0)
    assert _manifest(s3, f"manifests/florist/threads/{THREAD}.json").sameAs == "manifests/florist/2222222.json"

    # A thread manifest naming a change's that is gone: the bucket is listed instead, nothing is lost.
    s3.delete_object(Bucket=BUCKET, Key="manifests/florist/2222222.json")  # type: ignore[attr-defined]
    monkeypatch.setattr(preview, "_CHANGE_MANIFESTS", preview.ChangeManifests())
    again = S3PreviewPublisher(BUCKET, ORIGIN, s3_client=s3).publish(site, "florist", THREAD, C2)
    assert (again.uploaded, again.deleted) == (0, 0)
    assert set(_manifest(s3, "manifests/florist/2222222.json").files) == {"index.html", "css/site.css"}
