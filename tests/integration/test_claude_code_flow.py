"""Claude Code as a project's agent on the embedded stack: the fake CLI (tests/fakes/claude, on the workers'
PATH) speaks the real protocol; the real ASL, worker, git and preview around it."""

from __future__ import annotations

import json
import os
import time
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import git
import pytest

from workflows import names, projects
from workflows.adapters.aws import client
from workflows.adapters.stores.spending import DynamoSpending, month_of
from workflows.events import fold
from workflows.local import operations
from workflows.local.demo import create_demo_repository
from workflows.local.stack import StackInfo

from .conftest import AGENT_API_KEY, GIT_TOKEN

pytestmark = pytest.mark.integration

OWNER = "owner@example.com"


def _send(info: StackInfo, text: str, n: int, in_reply_to: str = "") -> tuple[Any, dict[str, Any]]:
    mail = EmailMessage(policy=SMTP)
    mail["From"] = OWNER
    mail["To"] = "agentic@mail.webordinary.test"
    mail["Subject"] = "Re: Colours" if in_reply_to else "Colours"
    mail["Message-ID"] = f"<agentic-{n}@mail.example.com>"
    if in_reply_to:
        mail["In-Reply-To"] = mail["References"] = in_reply_to
    mail.set_content(text + "\n")
    outcome = operations.deliver_email(info, mail.as_bytes())
    assert outcome.accepted and outcome.executionArn
    sfn = client("stepfunctions")
    described = operations.wait_for_execution(sfn, outcome.executionArn, timeout=120)
    assert described["status"] == "SUCCEEDED", operations.trace(sfn, outcome.executionArn)
    return outcome, json.loads(described["output"])["result"]


def test_plain_words_edit_the_site_and_a_follow_up_resumes_the_agents_session(info: StackInfo, repos: Path) -> None:
    bare = create_demo_repository(repos)
    project = projects.make_project("agentic", str(bare), [OWNER], build_command="python3 build.py", output_dir="dist")
    project = project.model_copy(update={"editor": "claude-code"})
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)

    first, result = _send(info, "Please make the headings blue.", 1)

    assert result["agent"]["costUsd"] > 0 and result["agent"]["turns"] == 3 and result["agent"]["sessionId"]
    assert any(step.startswith("editing src/") for step in result["agent"]["progress"])
    assert 'style="color: blue"' in operations.fetch_preview(result["previewUrl"]).text
    reply = [r for r in operations.outbox(info) if r["threadId"] == first.threadId][-1]
    assert "Made the main heading blue" in reply["text"]

    _, again = _send(info, 'Now please replace "Call us" with "Ring us".', 2, in_reply_to=reply["messageId"])
    assert again["agent"]["sessionId"] == result["agent"]["sessionId"]  # resumed, not a new session
    state = fold(first.threadId or "", operations.thread_events(client("dynamodb"), first.threadId or ""))
    assert state.agentSessionId == result["agent"]["sessionId"]
    sessions = list(Path(info.stateDir, "workspaces", "agentic").rglob(f"{state.agentSessionId}.jsonl"))
    (log,) = sessions
    assert len(log.read_text().splitlines()) == 2  # two prompts in one session

    # The session is lost (another volume, or pruned): a fresh one is told what the thread asked and did.
    log.unlink()
    _, third = _send(info, 'Please replace "Ring us" with "Phone us".', 3, in_reply_to=reply["messageId"])
    assert third["agent"]["sessionId"] != result["agent"]["sessionId"]
    (fresh,) = Path(info.stateDir, "workspaces", "agentic").rglob(f"{third['agent']['sessionId']}.jsonl")
    prompt = json.loads(fresh.read_text().splitlines()[0])["prompt"]
    assert "Earlier changes in this conversation" in prompt
    assert "Asked: Please make the headings blue. Done: Made the main heading blue" in prompt
    assert 'Asked: Now please replace "Call us" with "Ring us". Done: Replaced the text' in prompt


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")  # a zombie is dead for our purposes: nothing runs, init reaps it
    return status.exists() and "zombie" not in status.read_text()


def _claude_project(repos: Path, name: str) -> Path:
    bare = create_demo_repository(repos)
    project = projects.make_project(name, str(bare), [OWNER], build_command="python3 build.py", output_dir="dist")
    project = project.model_copy(update={"editor": "claude-code"})
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)
    return bare


def _deliver_to(info: StackInfo, to: str, text: str, thread: str | None = None) -> operations.IntakeOutcome:
    mail = EmailMessage(policy=SMTP)
    mail["From"] = OWNER
    local, _, domain = to.partition("@")
    mail["To"] = f"{local}+{thread}@{domain}" if thread else to
    mail["Subject"] = "Colours"
    mail["Message-ID"] = make_msgid(domain="mail.example.com")
    mail.set_content(text + "\n")
    outcome = operations.deliver_email(info, mail.as_bytes())
    assert outcome.accepted and outcome.executionArn
    return outcome


def test_an_interrupt_leaves_no_process_of_the_agent_alive(info: StackInfo, repos: Path) -> None:
    bare = _claude_project(repos, "agenthang")
    running = _deliver_to(info, "agenthang@mail.webordinary.test", "Make the headings blue [fake:hang]")
    workspaces = Path(info.stateDir, "workspaces", "agenthang")
    deadline = time.monotonic() + 60
    while not list(workspaces.rglob("fake-child.pid")):
        assert time.monotonic() < deadline, "the agent never started"
        time.sleep(0.1)
    (child_file,) = workspaces.rglob("fake-child.pid")
    time.sleep(0.2)  # both pid files are written before the fake waits
    agent, child = int((child_file.parent / "fake-agent.pid").read_text()), int(child_file.read_text())
    assert _alive(agent) and _alive(child)
    # What the agent is doing is recorded while it works, not only when it finishes.
    sfn = client("stepfunctions")
    deadline = time.monotonic() + 10
    while not (
        state := fold(running.threadId or "", operations.thread_events(client("dynamodb"), running.threadId or ""))
    ).working:
        assert time.monotonic() < deadline, "no progress recorded while the agent works"
        time.sleep(0.1)
    assert state.working == "running a command"
    assert sfn.describe_execution(executionArn=running.executionArn or "")["status"] == "RUNNING"

    newer = _deliver_to(
        info, "agenthang@mail.webordinary.test", 'Please replace "Call us" with "Ring us".', thread=running.threadId
    )
    first = operations.wait_for_execution(sfn, running.executionArn or "", timeout=120)
    second = operations.wait_for_execution(sfn, newer.executionArn or "", timeout=120)
    assert first["status"] == second["status"] == "SUCCEEDED", operations.trace(sfn, running.executionArn or "")
    assert [s["state"] for s in operations.trace(sfn, running.executionArn or "")["steps"]][-1] == "Superseded"
    deadline = time.monotonic() + 5
    while (_alive(agent) or _alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(agent) and not _alive(child)  # the CLI and the tool it started died with the interrupt
    # The newer command continued the thread: its edit is on the branch, the hanging agent's partial work kept.
    head = git.Repo(bare).commit(f"thread-{running.threadId}")
    assert b"Ring us" in (head.tree / "src" / "index.html").data_stream.read()


def test_the_agent_on_the_stack_sees_its_own_key_and_no_other_secret(info: StackInfo, repos: Path) -> None:
    bare = _claude_project(repos, "agentenv")
    outcome = _deliver_to(info, "agentenv@mail.webordinary.test", "Tell me your environment [fake:env]")
    described = operations.wait_for_execution(client("stepfunctions"), outcome.executionArn or "", timeout=120)
    assert described["status"] == "SUCCEEDED"
    head = git.Repo(bare).commit(f"thread-{outcome.threadId}")
    seen = (head.tree / "agent-env.txt").data_stream.read().decode()
    names_seen = {line.split("=", 1)[0] for line in seen.splitlines() if "=" in line}
    assert f"ANTHROPIC_API_KEY={AGENT_API_KEY}" in seen
    # The worker's own environment on the stack: AWS credentials and endpoint, its settings, the git token.
    leaked = {n for n in names_seen if n.startswith(("AWS_", "WEBORDINARY_", "MOTO_", "ECS_"))}
    assert leaked == set() and GIT_TOKEN not in seen


def test_a_spent_monthly_budget_pauses_the_change_and_continue_carries_it_on(info: StackInfo, repos: Path) -> None:
    bare = create_demo_repository(repos)
    project = projects.make_project(
        "agentbudget", str(bare), [OWNER], build_command="python3 build.py", output_dir="dist", monthly_budget_usd=0.25
    )
    project = project.model_copy(update={"editor": "claude-code", "continueUsd": 1.0})
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)
    sfn = client("stepfunctions")
    to = "agentbudget@mail.webordinary.test"

    first = _deliver_to(info, to, "Make the headings blue [fake:budget]")
    paused = operations.wait_for_execution(sfn, first.executionArn or "", timeout=120)
    assert paused["status"] == "SUCCEEDED"
    assert [s["state"] for s in operations.trace(sfn, first.executionArn or "")["steps"]][-1] == "Paused"
    result = json.loads(paused["output"])["result"]
    assert result["kind"] == "paused" and result["budget"] == {
        "spentUsd": 0.25,
        "allowanceUsd": 0.25,
        "continueUsd": 1.0,
    }
    head = git.Repo(bare).commit(f"thread-{first.threadId}")
    assert head.hexsha == result["commit"] and len(result["filesChanged"]) == 1  # the work so far, on the branch
    (reply,) = [r for r in operations.outbox(info) if r["threadId"] == first.threadId]
    assert "allowance for the editing assistant is used up ($0.25 of $0.25)" in reply["text"]
    assert "reply CONTINUE: that allows up to $1 more this month" in reply["text"]
    state = fold(first.threadId or "", operations.thread_events(client("dynamodb"), first.threadId or ""))
    assert state.pausedMessage == first.messageId

    carry_on = _deliver_to(info, to, "Continue", thread=first.threadId)
    done = operations.wait_for_execution(sfn, carry_on.executionArn or "", timeout=120)
    assert done["status"] == "SUCCEEDED", operations.trace(sfn, carry_on.executionArn or "")
    finished = json.loads(done["output"])["result"]
    assert finished["kind"] == "changed" and finished["agent"]["sessionId"] == result["agent"]["sessionId"]
    page = operations.fetch_preview(finished["previewUrl"]).text
    assert 'style="color: blue"' in page
    built = git.Repo(bare).commit(f"thread-{first.threadId}")
    assert built.parents[0].hexsha == result["commit"]  # carried on from the paused work
    spent = DynamoSpending(client("dynamodb"), names.SPENDING_TABLE.local_name).get("agentbudget", month_of())
    assert spent.spentUsd == pytest.approx(0.25 + 0.0123) and spent.extraUsd == 1.0 and spent.runs == 2
    state = fold(first.threadId or "", operations.thread_events(client("dynamodb"), first.threadId or ""))
    assert state.pausedMessage == "" and state.costUsd == pytest.approx(0.25 + 0.0123)
