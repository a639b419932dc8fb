"""Claude Code as a project's agent on the embedded stack: the fake CLI (tests/fakes/claude, on the workers'
PATH) speaks the real protocol; the real ASL, worker, git and preview around it."""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest

from workflows import names, projects
from workflows.aws import client
from workflows.events import fold
from workflows.local import operations
from workflows.local.demo import create_demo_repository
from workflows.local.stack import StackInfo

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
