"""``webordinary bench-sites``: what real sites cost the worker. Prints figures; asserts nothing about speed.

1. A 1,000-file site with a one-file change: the worker's own time outside the agent and the build (prepare,
   commit, push, incremental upload), against the same git work done with the plain git CLI and a single-file
   upload with boto3, and their ratio (the goal is at most 1.5x).
2. A second build with an unchanged lockfile: its install time (the dependency cache should make it ~0).
3. One screenshot of a real Vite page: p50 and max of a few.
4. The claude-code editor around the agent, with the fake CLI (tests/fakes/claude, the real protocol): process
   start to first stream line, the worker's own time around the CLI, and cancellation latency (signal to the
   whole process group gone, the agent's own child included).

S3 is moto in process; git is real, against a bare repository on local disk.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from container.worker.build import plan_build, run_build
from container.worker.job import run_command
from container.worker.preview import S3PreviewPublisher
from container.worker.screenshot import capture, find_browser, serve
from workflows.models import Command, NormalisedMessage, Project
from workflows.threads import branch_for

BUCKET = "bench-sites"
PAGES = 1000
RUNS = 5
OVERHEAD_RUNS = 9  # the figure with the goal: more runs, a steadier median
IDENTITY = ("WebOrdinary", "bot@webordinary.test")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}
VITE_SOURCE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "sites" / "vite"
FAKE_CLAUDE = Path(__file__).resolve().parents[2] / "tests" / "fakes" / "claude"


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV, "GIT_CEILING_DIRECTORIES": str(cwd.parent)}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _big_site(where: Path) -> Path:
    """A bare repository whose main holds a 1,000-page site (about 2 KiB a page) and its stylesheet."""
    seed = where / "seed"
    (seed / "pages").mkdir(parents=True)
    for n in range(PAGES - 1):
        body = f"<h1>Page {n}</h1>\n" + "<p>Fresh bread daily on the harbour front.</p>\n" * 40
        (seed / "pages" / f"page-{n:04}.html").write_text(body)
    (seed / "index.html").write_text("<h1>Harbour Bakery</h1>\n<p>Call us on 555-0100</p>\n")
    bare = where / "site.git"
    _git(where, "init", "-q", "--bare", "-b", "main", str(bare))
    _git(seed, "init", "-q", "-b", "main")
    _git(seed, "add", "-A")
    _git(seed, "commit", "-q", "-m", "A big site")
    _git(seed, "push", "-q", str(bare), "main")
    return bare


def _command(n: int, thread: str) -> tuple[NormalisedMessage, Command]:
    message_id = f"bench-{n}"
    instruction = f'replace "555-01{n:02}" with "555-01{n + 1:02}"'
    message = NormalisedMessage(
        messageId=message_id,
        projectId="big",
        threadId=thread,
        userId="alice",
        sender="alice@example.com",
        instruction=instruction,
        receivedAt="2026-01-01T00:00:00Z",
        rawKey=f"raw/{message_id}",
    )
    command = Command(
        messageId=message_id,
        threadId=thread,
        projectId="big",
        userId="alice",
        branch=branch_for(thread),
        messageKey=f"messages/{message_id}",
        executionName=f"{thread}-{message_id}",
    )
    return message, command


@contextmanager
def _s3() -> Iterator[Any]:
    from moto import mock_aws

    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID")}
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3
    for key, value in saved.items():
        if value is not None:
            os.environ[key] = value


def worker_overhead(where: Path) -> dict[str, Any]:
    """Figure 1: the worker against plain git + boto3, for a one-file change of a 1,000-file site."""
    bare = _big_site(where)
    project = Project(projectId="big", repoUrl=str(bare), editor="replace", buildCommand="")
    thread = "bg7k2m4n"
    worker_ms: list[float] = []
    plain_ms: list[float] = []
    branch = branch_for(thread)
    with _s3() as s3:
        publisher = S3PreviewPublisher(BUCKET, "http://{label}.preview.localhost:1", s3_client=s3)
        root = where / "workspaces"
        plain = where / "plain"
        # The worker's runs and the plain CLI's alternate, so that a machine getting slower or faster during
        # the bench weighs on both alike; each against its own copy of the repository, so that neither fetches
        # the other's commits (in the worker's usual case its branch moved only by its own pushes).
        for n in range(OVERHEAD_RUNS + 1):  # the first run clones and uploads everything: not counted
            message, command = _command(n, thread)
            result = run_command(project, message, command, workspace_root=root, publisher=publisher, identity=IDENTITY)
            if not n:
                _git(where, "clone", "-q", "--bare", str(bare), str(where / "plain.git"))
                _git(where, "clone", "-q", str(where / "plain.git"), str(plain))
                continue
            # Everything but the agent (the replace editor here, which reads every file of the site) and the
            # build: prepare, commit, push, upload, and whatever the worker does between them.
            t = result.timings
            worker_ms.append(t.totalMs - t.editMs - t.buildMs - t.screenshotMs)
            started = time.perf_counter()
            _git(plain, "fetch", "-q", "origin")
            _git(plain, "checkout", "-q", "-B", branch, f"origin/{branch}")
            page = plain / "index.html"
            page.write_text(page.read_text() + f"<p>{n}</p>\n")
            _git(plain, "commit", "-q", "-am", f"plain {n}")
            _git(plain, "push", "-q", "origin", branch)
            s3.put_object(Bucket=BUCKET, Key="plain/index.html", Body=page.read_bytes(), ContentType="text/html")
            plain_ms.append((time.perf_counter() - started) * 1000)
    worker, baseline = statistics.median(worker_ms), statistics.median(plain_ms)
    return {"files": PAGES, "workerMs": worker, "plainMs": baseline, "ratio": worker / baseline}


def second_install(where: Path) -> dict[str, Any]:
    """Figure 2: install time of a second build with the same lockfile (the dependency cache)."""
    if shutil.which("npm") is None:
        return {"skipped": "no npm on this machine"}
    cache = where / "cache"
    times: list[float] = []
    for n in range(2):
        checkout = where / f"vite-{n}"
        shutil.copytree(VITE_SOURCE / "source", checkout)
        plan = plan_build(checkout, "", "")
        started = time.perf_counter()
        try:
            run_build(checkout, plan, 600, None, cache)
        except Exception as exc:  # a registry that cannot be reached: say so, not a traceback
            return {"skipped": f"the first build failed ({type(exc).__name__}): {str(exc).splitlines()[0]}"}
        times.append(time.perf_counter() - started)
    return {"firstBuildS": times[0], "secondBuildS": times[1]}


def screenshot_time() -> dict[str, Any]:
    browser = find_browser()
    if browser is None:
        return {"skipped": "no Chromium on this machine"}
    seconds = []
    with serve(VITE_SOURCE / "dist") as origin:
        for _ in range(RUNS):
            started = time.perf_counter()
            capture(browser, origin + "/contact/")
            seconds.append(time.perf_counter() - started)
    return {"p50S": statistics.median(seconds), "maxS": max(seconds)}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def agent_figures(where: Path) -> dict[str, Any]:
    """Figure 4: what the worker adds around the agent, and how fast a cancelled agent is gone."""
    import threading

    from container.worker.cancel import Cancellation, CommandCancelledError, Interruption
    from container.worker.editors import AgentConfig, ClaudeCodeEditor

    checkout = where / "pair" / "checkout"
    checkout.mkdir(parents=True)
    editor = ClaudeCodeEditor(AgentConfig(executable=str(FAKE_CLAUDE)), timeout=60)
    first_line, bare, wrapped = [], [], []
    for n in range(RUNS):
        (checkout / "index.html").write_text(f"<h1>Page {n}</h1>\n")
        argv = editor.argv("Make the headings blue")
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=checkout, env=editor.env(checkout), stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        process.stdout.readline()
        first_line.append(time.perf_counter() - started)
        process.communicate()
        bare.append(time.perf_counter() - started)
        (checkout / "index.html").write_text(f"<h1>Page {n}</h1>\n")
        started = time.perf_counter()
        editor.run(checkout, "Make the headings blue", set())
        wrapped.append(time.perf_counter() - started)
    cancelled: list[float] = []
    for _ in range(RUNS):
        pid_file = checkout / "fake-child.pid"
        pid_file.unlink(missing_ok=True)
        cancel = Cancellation()
        done = threading.Event()

        def run(token: Cancellation = cancel, finished: threading.Event = done) -> None:
            try:
                editor.run(checkout, "Make the headings blue [fake:hang]", set(), cancel=token)
            except CommandCancelledError:
                pass
            finished.set()

        threading.Thread(target=run, daemon=True).start()
        while not pid_file.exists():
            time.sleep(0.01)
        child = int(pid_file.read_text())
        started = time.perf_counter()
        cancel.cancel(Interruption(by_message="bench", by_thread="bench"))
        done.wait(30)
        while Path(f"/proc/{child}").exists() and "zombie" not in Path(f"/proc/{child}/status").read_text():
            time.sleep(0.005)
        cancelled.append(time.perf_counter() - started)
    overhead = [w - b for w, b in zip(wrapped, bare, strict=True)]
    return {
        "firstLineP50S": statistics.median(first_line),
        "overheadP50S": statistics.median(overhead),
        "cancelP50S": statistics.median(cancelled),
        "cancelP95S": _pct(cancelled, 0.95),
    }


def run_bench_sites() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="webordinary-bench-sites-") as scratch:
        where = Path(scratch)
        (where / "big").mkdir()
        (where / "npm").mkdir()
        (where / "agent").mkdir()
        return {
            "bigSite": worker_overhead(where / "big"),
            "secondInstall": second_install(where / "npm"),
            "screenshot": screenshot_time(),
            "agent": agent_figures(where / "agent"),
        }


def print_report(report: dict[str, Any]) -> None:
    big = report["bigSite"]
    print(
        f"1,000-file site, one-file change (p50 of {OVERHEAD_RUNS}): "
        f"worker outside agent and build {big['workerMs']:.0f} ms; "
        f"plain git CLI + one boto3 upload {big['plainMs']:.0f} ms; ratio {big['ratio']:.2f}x (goal <= 1.5x)"
    )
    install = report["secondInstall"]
    if "skipped" in install:
        print(f"second build with an unchanged lockfile: skipped ({install['skipped']})")
    else:
        print(
            f"real Vite build: first {install['firstBuildS']:.1f} s (npm ci), second with the same lockfile "
            f"{install['secondBuildS']:.1f} s (dependencies from the cache)"
        )
    shot = report["screenshot"]
    if "skipped" in shot:
        print(f"screenshot: skipped ({shot['skipped']})")
    else:
        print(f"screenshot of a real Vite page, 1280x800: p50 {shot['p50S']:.2f} s, max {shot['maxS']:.2f} s")
    agent = report["agent"]
    print(
        f"claude-code editor with the fake CLI (p50 of {RUNS}): process start to first stream line "
        f"{agent['firstLineP50S'] * 1000:.0f} ms; the worker's own time around the CLI "
        f"{agent['overheadP50S'] * 1000:.0f} ms; cancellation (signal to the process group gone, its child "
        f"included) p50 {agent['cancelP50S'] * 1000:.0f} ms, p95 {agent['cancelP95S'] * 1000:.0f} ms"
    )
