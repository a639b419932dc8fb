"""Pictures of a change: which built pages a change touched, and real headless Chromium taking them.

The page mapping is pure and runs everywhere. The pictures need a browser: ``.ci/run`` installs Debian's
``chromium`` so CI takes them for real; a machine without one skips those tests and says why.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from container.worker.cancel import Cancellation, CommandCancelledError, Interruption
from container.worker.screenshot import (
    VIEWPORT,
    ScreenshotError,
    capture,
    changed_pages,
    find_browser,
    screenshots,
    serve,
    site_pages,
)
from tests import pngs

VITE_DIST = Path(__file__).parents[1] / "fixtures" / "sites" / "vite" / "dist"
BROWSER = find_browser()
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium on this machine (CI installs Debian's chromium; apt-get install chromium)"
)


def built(tmp_path: Path, *pages: str) -> Path:
    site = tmp_path / "dist"
    for page in pages:
        (site / page).parent.mkdir(parents=True, exist_ok=True)
        (site / page).write_text(f"<h1>{page}</h1>")
    return site


# --- which pages ---------------------------------------------------------------------------------------------


def test_built_pages_are_named_by_their_paths_on_the_site(tmp_path: Path) -> None:
    site = built(tmp_path, "index.html", "contact/index.html", "about.html", "404.html", "blog/a/index.html")
    assert site_pages(site) == {
        "/": "index.html",
        "/about.html": "about.html",
        "/blog/a/": "blog/a/index.html",
        "/contact/": "contact/index.html",
    }


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (["contact/index.html"], ["/contact/"]),  # no build: the file is the page
        (["about.html"], ["/about.html"]),
        (["src/pages/contact.astro"], ["/contact/"]),  # Astro
        (["src/pages/index.astro"], ["/"]),
        (["pages/about.md"], ["/about.html"]),  # Eleventy / Jekyll
        (["content/blog/hello-world.md"], ["/blog/hello-world/"]),  # Hugo
        (["src/routes/contact/+page.svelte"], ["/"]),  # unknown shape: home
        (["src/content/posts/hello-world.mdx"], ["/blog/hello-world/"]),  # same name, another folder
        (["src/style.css", "package.json"], ["/"]),  # not a page: home
        (["src/pages/contact.astro", "about.html", "contact/index.html"], ["/contact/", "/about.html"]),
        (["a.html", "b.html", "c.html", "d.html"], ["/a.html", "/b.html", "/c.html"]),  # three at most
    ],
)
def test_changed_source_files_map_to_the_pages_they_build(
    tmp_path: Path, changed: list[str], expected: list[str]
) -> None:
    site = built(
        tmp_path,
        "index.html",
        "contact/index.html",
        "about.html",
        "blog/hello-world/index.html",
        "a.html",
        "b.html",
        "c.html",
        "d.html",
    )
    assert changed_pages(site, changed) == expected


def test_a_site_without_a_home_page_shows_its_first_page(tmp_path: Path) -> None:
    assert changed_pages(built(tmp_path, "docs/index.html"), ["style.css"]) == ["/docs/"]


def test_no_browser_means_no_picture_and_says_why(tmp_path: Path) -> None:
    assert find_browser("none") is None
    assert find_browser("no-such-browser-here") is None
    with pytest.raises(ScreenshotError, match="no browser"):
        screenshots(built(tmp_path, "index.html"), ["index.html"], None)


def test_the_site_is_served_at_its_own_origin_with_its_404_page() -> None:
    with serve(VITE_DIST) as origin:
        assert origin.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(origin + "/contact/") as page:
            assert b"Contact" in page.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(origin + "/nope/")
        assert missing.value.code == 404 and b"<" in missing.value.read()


# --- real pictures -------------------------------------------------------------------------------------------


@needs_browser
def test_a_real_vite_page_is_pictured_with_its_root_absolute_stylesheet() -> None:
    (shot,) = screenshots(VITE_DIST, ["contact/index.html"], BROWSER)
    assert shot.page == "/contact/"
    assert pngs.size(shot.png) == VIEWPORT
    # body { background: #fdf6e3 } comes from /assets/main-….css, a root-absolute link: it loaded.
    assert pngs.pixel(shot.png, 640, 600)[:3] == (0xFD, 0xF6, 0xE3)


@needs_browser
def test_without_its_stylesheet_the_page_looks_different(tmp_path: Path) -> None:
    # The control for the test above: the same page with its CSS gone has the browser's white background.
    site = tmp_path / "dist"
    shutil.copytree(VITE_DIST, site)
    for css in (site / "assets").glob("*.css"):
        css.unlink()
    (shot,) = screenshots(site, ["contact/index.html"], BROWSER)
    assert pngs.pixel(shot.png, 640, 600)[:3] == (0xFF, 0xFF, 0xFF)


@needs_browser
def test_a_cancelled_picture_stops_the_browser(tmp_path: Path) -> None:
    cancel = Cancellation()
    cancel.cancel(Interruption(by_message="m-2", by_thread="t2"))
    with serve(VITE_DIST) as origin, pytest.raises(CommandCancelledError):
        capture(str(BROWSER), origin + "/", cancel=cancel)


def test_a_browser_that_writes_nothing_is_a_reason(tmp_path: Path) -> None:
    fake = tmp_path / "fake-browser"
    fake.write_text("#!/bin/sh\necho 'crashed' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(ScreenshotError, match="could not take the picture"):
        screenshots(VITE_DIST, [], str(fake))


def test_a_browser_that_hangs_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    fake = tmp_path / "fake-browser"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    with pytest.raises(ScreenshotError, match=r"did not finish within 0\.5 seconds"):
        screenshots(VITE_DIST, [], str(fake), timeout=0.5)


def test_browsers_take_turns_for_the_machines_slots(tmp_path: Path) -> None:
    from container.worker.screenshot import browser_slot

    held = browser_slot(slots=1, where=tmp_path)
    busy = browser_slot(wait=0.3, slots=1, where=tmp_path)
    with held, pytest.raises(ScreenshotError, match="too busy"), busy:
        pass  # never reached: the only slot is held
    with browser_slot(wait=0.3, slots=1, where=tmp_path):
        pass  # free again once released


@needs_browser
def test_a_change_is_pictured_before_and_after_and_the_before_is_kept_for_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from container.worker.job import run_command
    from tests.gitrepos import FakePublisher, isolate_git, message_and_command, seed_origin
    from workflows.models import Project

    isolate_git(tmp_path, monkeypatch)
    page = '<body style="background:#fff"><h1>Call us</h1><p style="font-size:80px">{}</p></body>\n'
    origin = seed_origin(tmp_path / "remote" / "site.git", {"index.html": page.format("555-0100"), "about.html": "a"})
    project = Project(projectId="acme", repoUrl=str(origin), editor="replace", buildCommand="")
    root, publisher = tmp_path / "workspaces", FakePublisher()

    def change(thread: str, message_id: str) -> list:  # type: ignore[type-arg]
        message, command = message_and_command('replace "555-0100" with "555-0199"', message_id, thread)
        result = run_command(
            project,
            message,
            command,
            workspace_root=root,
            publisher=publisher,
            identity=("WebOrdinary", "bot@webordinary.test"),
            browser=BROWSER,
        )
        return result.screenshots

    (shot,) = change("ab3k9x2m", "m-1")
    assert shot.page == "/" and shot.key.endswith("/1.png") and shot.beforeKey.endswith("/1-before.png")
    after, before = publisher.screenshots[shot.key], publisher.screenshots[shot.beforeKey]
    assert pngs.size(before) == pngs.size(after) == VIEWPORT and before != after
    kept = list((root / ".cache" / "before" / "acme").rglob("*.png"))
    assert [path.name for path in kept] == ["home.png"]
    assert not (root / "acme" / "alice" / "before").exists()  # the worktree is gone

    kept[0].write_bytes(b"\x89PNG-kept")  # the next thread's change against the same live version reuses it
    (again,) = change("cd5h7j8k", "m-2")
    assert publisher.screenshots[again.beforeKey] == b"\x89PNG-kept"
