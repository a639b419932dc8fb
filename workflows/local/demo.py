"""``webordinary demo``: the main job end to end on the embedded stack, checked, not just printed."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import git

from workflows import names, projects
from workflows.adapters.aws import client
from workflows.local import operations
from workflows.local.stack import EmbeddedStack, StackInfo

DEMO_PROJECT = "demo"
DEMO_OWNER = "owner@example.com"
DEMO_INSTRUCTION = 'Please replace "Call us" with "Ring us" on the site.'

_INDEX = """<h1>Harbour Bakery</h1>
<p>Fresh bread every morning, baked by the harbour since 1998.</p>
<p class="cta">Call us on 555-0100 to order a cake.</p>
"""
_CONTACT = """<h1>Contact</h1>
<p>Call us on 555-0100, or drop by at 12 Quay Street.</p>
"""
_BUILD = '''"""Build the site: wrap every page in src/ with the layout and write it to dist/."""
import pathlib
import shutil

LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body>
{body}
<footer>Harbour Bakery</footer>
</body></html>
"""

src, dist = pathlib.Path("src"), pathlib.Path("dist")
shutil.rmtree(dist, ignore_errors=True)
dist.mkdir()
for page in sorted(src.glob("*.html")):
    body = page.read_text(encoding="utf-8")
    title = page.stem.capitalize()
    (dist / page.name).write_text(LAYOUT.format(title=title, body=body), encoding="utf-8")
print(f"built {len(list(dist.glob('*.html')))} pages")
'''


def create_demo_repository(where: Path) -> Path:
    """A small static site in a bare repository (standing in for GitHub), with a build step to ``dist/``."""
    bare = where / "demo-site.git"
    if bare.exists():
        shutil.rmtree(bare)
    git.Repo.init(bare, bare=True, initial_branch="main")
    with tempfile.TemporaryDirectory(prefix="webordinary-seed-") as tmp:
        work = git.Repo.init(tmp, initial_branch="main")
        with work.config_writer("repository") as cfg:  # per-repository identity, never global
            cfg.set_value("user", "name", "Demo Owner")
            cfg.set_value("user", "email", DEMO_OWNER)
        root = Path(tmp)
        (root / "src").mkdir()
        (root / "src" / "index.html").write_text(_INDEX)
        (root / "src" / "contact.html").write_text(_CONTACT)
        (root / "build.py").write_text(_BUILD)
        (root / ".gitignore").write_text("dist/\n")
        work.index.add(["src/index.html", "src/contact.html", "build.py", ".gitignore"])
        work.index.commit("Harbour Bakery site")
        work.create_remote("origin", str(bare)).push("main:main")
    return bare


def demo_email(to: str, instruction: str = DEMO_INSTRUCTION, sender: str = DEMO_OWNER) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Demo Owner <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Change the phone wording"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg.set_content(instruction + "\n\nThanks!\n")
    return bytes(msg)


@dataclass
class DemoResult:
    ok: bool
    report: dict[str, Any]
    problems: list[str]


def add_demo_project(info: StackInfo, repo: Path) -> str:
    project = projects.make_project(
        DEMO_PROJECT, str(repo), [DEMO_OWNER], build_command="python3 build.py", output_dir="dist"
    )
    info.apply()
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)
    return f"{DEMO_PROJECT}@{info.inboundDomain}"


def run_demo(info: StackInfo, timeout: float = 120.0) -> DemoResult:
    started = time.monotonic()
    repo = create_demo_repository(Path(info.stateDir) / "repos")
    address = add_demo_project(info, repo)
    outcome = operations.deliver_email(info, demo_email(address))
    problems: list[str] = []
    report: dict[str, Any] = {"project": DEMO_PROJECT, "address": address, "accepted": outcome.accepted}
    if not outcome.accepted or outcome.executionArn is None or outcome.threadId is None:
        return DemoResult(False, report, [f"the demo mail was not accepted: {outcome.rejected}"])
    sfn = client("stepfunctions")
    described = operations.wait_for_execution(sfn, outcome.executionArn, timeout)
    thread_id = outcome.threadId
    branch = f"thread-{thread_id}"
    report.update(
        {
            "threadId": thread_id,
            "execution": described["name"],
            "executionArn": outcome.executionArn,
            "status": described["status"],
            "branch": branch,
        }
    )
    if described["status"] != "SUCCEEDED":
        problems.append(f"execution ended {described['status']}: {described.get('error')} {described.get('cause')}")
    result = _json(described.get("output")).get("result", {})
    report["commit"] = result.get("commit")
    report["previewUrl"] = result.get("previewUrl")
    report["summary"] = result.get("summary")

    # Check what really happened, not what the workflow says happened.
    bare = git.Repo(repo)
    try:
        head = bare.commit(branch)
        if head.hexsha != report["commit"]:
            problems.append(f"{branch} is at {head.hexsha}, not the reported commit")
        page = head.tree / "src" / "index.html"
        if b"Ring us" not in page.data_stream.read():
            problems.append("the pushed commit does not contain the edit")
    except (git.BadName, KeyError, ValueError) as exc:
        problems.append(f"branch {branch} was not pushed: {exc}")
    if report["previewUrl"]:
        response = operations.fetch_preview(report["previewUrl"])
        report["previewStatus"] = response.status_code
        if response.status_code != 200 or "Ring us" not in response.text:
            problems.append(f"the preview at {report['previewUrl']} does not serve the edited page")
    else:
        problems.append("no preview URL")
    replies = [r for r in operations.outbox(info) if r["threadId"] == thread_id]
    report["reply"] = replies[-1] if replies else None
    if len(replies) != 1:
        problems.append(f"expected one reply in the outbox, found {len(replies)}")
    report["seconds"] = round(time.monotonic() - started, 2)
    return DemoResult(not problems, report, problems)


def _json(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def demo(state_dir: Path, keep: bool = False, port: int = 0) -> tuple[DemoResult, EmbeddedStack]:
    stack = EmbeddedStack(state_dir=state_dir, port=port)
    info = stack.start()
    try:
        result = run_demo(info)
    except BaseException:
        stack.stop()
        raise
    if not keep:
        stack.stop()
    return result, stack
