"""Pictures of a change: the built pages it touched, 1280 by 800, taken with headless Chromium.

The built site is served from a throwaway HTTP server on the loopback at its own origin, so root-absolute
links (``/_astro/index.css``) load exactly as on the preview, whatever the preview's address. Which pages:
:func:`changed_pages` maps the changed source files to built pages (``src/pages/contact.astro`` →
``/contact/``), and falls back to the home page. The browser runs in its own process group with the sanitised
environment the site's tooling gets, a profile of its own and a deadline; every way it can fail is a
:class:`ScreenshotError` with a plain reason, which the command reports and never fails for.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.server
import os
import shlex
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

from container.worker.cancel import Cancellation
from container.worker.editors import run_shell, sanitised_env

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
VIEWPORT = (1280, 800)
MAX_PAGES = 3
SHOT_TIMEOUT_S = 45.0
# Time the page gets to run its scripts and load its fonts before the picture (virtual time: no real wait
# once the page is idle).
SETTLE_MS = 3000
# Browsers are heavy: at most this many at once on one machine (every worker there shares the slots, through
# lock files in the machine's own temp dir: on AWS each task has its own; never on the shared workspace volume).
BROWSER_SLOTS = max(1, (os.cpu_count() or 2) // 2)
SLOT_WAIT_S = 60.0
# Where generators keep page sources; what follows is the page's path on the built site.
_PAGE_ROOTS = ("src/pages/", "src/routes/", "src/content/", "app/", "pages/", "content/", "src/", "docs/")
_PAGE_SUFFIXES = {".html", ".htm", ".md", ".markdown", ".mdx", ".astro", ".njk", ".liquid", ".vue", ".svelte",
                  ".jsx", ".tsx", ".hbs", ".pug", ".erb"}  # fmt: skip


class ScreenshotError(Exception):
    """Why there is no picture, in words fit for the reply ("the page did not load in time")."""


@dataclass(frozen=True)
class Shot:
    page: str  # the page's path on the site: "/", "/contact/"
    png: bytes


def find_browser(configured: str = "") -> str | None:
    """The browser to use: ``configured`` (a name on PATH or a path; "none" turns pictures off), else the first
    of :data:`BROWSERS` on PATH."""
    if configured.strip().lower() == "none":
        return None
    for name in [configured.strip()] if configured.strip() else BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


# --- which pages -------------------------------------------------------------------------------------------


def site_pages(site_dir: Path) -> dict[str, str]:
    """Every built page: its path on the site ("/", "/contact/", "/about.html") → its file, relative."""
    pages: dict[str, str] = {}
    for path in sorted(site_dir.rglob("*.html")):
        relative = path.relative_to(site_dir).as_posix()
        if relative.startswith((".git/", "node_modules/")) or relative == "404.html":
            continue
        if relative == "index.html":
            pages["/"] = relative
        elif relative.endswith("/index.html"):
            pages["/" + relative.removesuffix("index.html")] = relative
        else:
            pages["/" + relative] = relative
    return pages


def changed_pages(site_dir: Path, changed_files: Sequence[str], limit: int = MAX_PAGES) -> list[str]:
    """The built pages the changed files most likely show, in the order the files came; the home page when
    none can be told (a stylesheet, a component, a config file)."""
    pages = site_pages(site_dir)
    by_file = {relative: page for page, relative in pages.items()}
    found: list[str] = []
    for changed in changed_files:
        page = by_file.get(changed) or _page_for_source(PurePosixPath(changed), pages)
        if page is not None and page not in found:
            found.append(page)
    if not found and pages:
        found.append("/" if "/" in pages else next(iter(pages)))
    return found[:limit] or ["/"]


def _page_for_source(source: PurePosixPath, pages: dict[str, str]) -> str | None:
    if source.suffix.lower() not in _PAGE_SUFFIXES:
        return None
    slug = source.with_suffix("").as_posix()
    for root in _PAGE_ROOTS:
        if slug.startswith(root):
            slug = slug.removeprefix(root)
            break
    slug = slug.removesuffix("/index").removesuffix("index").strip("/")
    if not slug:
        return "/" if "/" in pages else None
    for candidate in (f"/{slug}/", f"/{slug}.html"):
        if candidate in pages:
            return candidate
    # Blog-style sources (content/posts/2024-01-02-hello.md → /posts/hello/): match on the last segment.
    tail = slug.rsplit("/", 1)[-1]
    return next((page for page in pages if page.rstrip("/").rsplit("/", 1)[-1] in (tail, f"{tail}.html")), None)


# --- serving and shooting ----------------------------------------------------------------------------------


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # a page's requests are not the worker's log

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        not_found = Path(str(self.directory)) / "404.html"
        if code != 404 or not not_found.is_file():
            super().send_error(code, message, explain)
            return
        body = not_found.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@contextlib.contextmanager
def serve(site_dir: Path) -> Iterator[str]:
    """Serve ``site_dir`` at the root of a loopback origin for as long as the context lasts; yields the origin."""
    handler = partial(_SiteHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="screenshot-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _check_loads(origin: str, page: str) -> None:
    try:
        with urllib.request.urlopen(origin + page, timeout=10) as response:
            response.read(1)
    except urllib.error.HTTPError as exc:
        raise ScreenshotError(f"the page {page} is not in the built site") from exc
    except OSError as exc:
        raise ScreenshotError(f"the page {page} could not be loaded") from exc


@contextlib.contextmanager
def browser_slot(
    wait: float = SLOT_WAIT_S, cancel: Cancellation | None = None, slots: int = BROWSER_SLOTS, where: Path | None = None
) -> Iterator[None]:
    """Hold one of the machine's browser slots for the duration; ScreenshotError when none frees up in time."""
    folder = where or Path(tempfile.gettempdir()) / "webordinary-browser-slots"
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        for index in range(slots):
            handle = (folder / f"{index}.lock").open("w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if cancel is not None:
            cancel.check()
        if time.monotonic() > deadline:
            raise ScreenshotError("the machine that takes the pictures was too busy")
        time.sleep(0.1)


def capture(browser: str, url: str, *, timeout: float = SHOT_TIMEOUT_S, cancel: Cancellation | None = None) -> bytes:
    """One PNG of ``url`` at :data:`VIEWPORT`."""
    with tempfile.TemporaryDirectory(prefix="webordinary-shot-") as scratch:
        png = Path(scratch) / "shot.png"
        argv = [
            browser,
            "--headless",
            "--no-sandbox",  # Fargate gives no user namespaces for its sandbox: the container is the sandbox
            "--disable-gpu",
            "--disable-dev-shm-usage",  # a container's /dev/shm is 64 MiB
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--mute-audio",
            f"--user-data-dir={scratch}/profile",
            f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
            f"--virtual-time-budget={SETTLE_MS}",
            f"--screenshot={png}",
            url,
        ]
        env = sanitised_env(
            {"HOME": scratch, "XDG_CONFIG_HOME": f"{scratch}/config", "XDG_CACHE_HOME": f"{scratch}/cache"}
        )
        # Below everything else: a worker's heartbeats and git must never wait for a picture.
        nice = ["nice", "-n", "10"] if shutil.which("nice") else []
        result = run_shell(shlex.join(nice + argv), Path(scratch), env, timeout, keep_lines=40, cancel=cancel)
        if cancel is not None and result.cancelled:
            cancel.check()
        if result.timed_out:
            raise ScreenshotError(f"the browser did not finish within {timeout:g} seconds")
        if not png.is_file() or png.stat().st_size == 0:
            raise ScreenshotError("the browser could not take the picture")
        return png.read_bytes()


def screenshots(
    site_dir: Path,
    changed_files: Sequence[str],
    browser: str | None,
    *,
    timeout: float = SHOT_TIMEOUT_S,
    cancel: Cancellation | None = None,
    pages: Sequence[str] | None = None,
) -> list[Shot]:
    """Pictures of the pages the change touched, or :class:`ScreenshotError` saying why there are none.
    ``pages``: these pages instead, leaving out any the site does not have (the "before" of a new page)."""
    if browser is None:
        raise ScreenshotError("no browser is installed where your change was built")
    if not site_dir.is_dir():
        raise ScreenshotError("there is no built site to look at")
    if pages is not None:
        built = site_pages(site_dir)
        wanted = [page for page in pages if page in built]
    else:
        wanted = changed_pages(site_dir, changed_files)
    shots: list[Shot] = []
    with browser_slot(cancel=cancel), serve(site_dir) as origin:
        for page in wanted:
            _check_loads(origin, page)
            shots.append(Shot(page=page, png=capture(browser, origin + page, timeout=timeout, cancel=cancel)))
    return shots


def is_png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n")
