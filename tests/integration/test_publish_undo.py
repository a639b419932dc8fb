"""PUBLISH and UNDO by reply, on the embedded stack: the real ASL, a real worker, a real bare repository, the
live site served at its own origin (``http://{project}.site.localhost:{port}/``)."""

from __future__ import annotations

import json
import subprocess
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import git
import pytest

from workflows import names, projects
from workflows import replies as replies_words
from workflows.adapters.aws import client
from workflows.events import fold
from workflows.local import operations
from workflows.local.demo import create_demo_repository
from workflows.local.stack import StackInfo

pytestmark = pytest.mark.integration

OWNER = "owner@example.com"


class Conversation:
    """One owner writing to one project's address, each mail answering our latest reply in the thread."""

    def __init__(self, info: StackInfo, project: str) -> None:
        self.info, self.project = info, project
        self.thread = ""
        self.sent = 0

    def say(self, text: str) -> dict[str, Any]:
        self.sent += 1
        mail = EmailMessage(policy=SMTP)
        mail["From"] = OWNER
        mail["To"] = f"{self.project}@mail.webordinary.test"
        mail["Subject"] = "Re: Our phone number" if self.thread else "Our phone number"
        mail["Message-ID"] = f"<{self.project}-{self.sent}@mail.example.com>"
        if self.thread:
            latest = [r for r in operations.outbox(self.info) if r["threadId"] == self.thread][-1]
            mail["In-Reply-To"] = mail["References"] = latest["messageId"]
        mail.set_content(text + "\n")
        outcome = operations.deliver_email(self.info, mail.as_bytes())
        assert outcome.accepted and outcome.executionArn, outcome
        self.thread = self.thread or outcome.threadId or ""
        assert outcome.threadId == self.thread
        sfn = client("stepfunctions")
        described = operations.wait_for_execution(sfn, outcome.executionArn, timeout=120)
        assert described["status"] == "SUCCEEDED", operations.trace(sfn, outcome.executionArn)
        result: dict[str, Any] = json.loads(described["output"])["result"]
        return result

    def last_reply(self) -> str:
        text: str = [r for r in operations.outbox(self.info) if r["threadId"] == self.thread][-1]["text"]
        assert replies_words.leaks(text) == [], text
        return text


def _project(repos: Path, name: str) -> Path:
    bare = create_demo_repository(repos)
    project = projects.make_project(name, str(bare), [OWNER], build_command="python3 build.py", output_dir="dist")
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)
    return bare


def _page(url: str) -> str:
    response = operations.fetch_preview(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.text


def test_publish_makes_the_change_live_and_undo_takes_it_back_everywhere(info: StackInfo, repos: Path) -> None:
    bare = git.Repo(_project(repos, "quay"))
    before = bare.commit("main").hexsha
    talk = Conversation(info, "quay")

    changed = talk.say('Please replace "Call us" with "Ring us".')
    assert "reply PUBLISH" in talk.last_reply() and "reply UNDO" in talk.last_reply()

    published = talk.say("PUBLISH")
    assert published["kind"] == "publish" and published["live"]["outcome"] == "published"
    assert bare.commit("main").hexsha == changed["commit"]  # a fast-forward to exactly what the owner saw
    live_url = published["live"]["liveUrl"]
    assert live_url.startswith("http://quay.site.localhost:")
    assert "Ring us" in _page(live_url) and "Ring us" in _page(live_url + "contact.html")
    assert "Your change is live." in talk.last_reply() and live_url in talk.last_reply()

    undone = talk.say("undo")  # any case
    assert undone["kind"] == "undo" and undone["live"]["outcome"] == "undone" and undone["live"]["rolledBack"]
    assert "Call us" in _page(live_url) and "Ring us" not in _page(live_url)  # the live site is back
    assert "Call us" in _page(undone["previewUrl"]) and "Ring us" not in _page(undone["previewUrl"])
    main = bare.commit("main")
    assert main.parents[0].hexsha == changed["commit"]  # a new commit on top: history never rewritten
    assert main.tree == bare.commit(before).tree
    reply = talk.last_reply()
    assert "Your last change is taken back" in reply and "back to how it was before you published" in reply

    # Both were recorded: the fold knows the publish, and that the undo made it no longer the last step.
    state = fold(talk.thread, operations.thread_events(client("dynamodb"), talk.thread))
    kinds = [m.kind for m in state.messages.values()]
    assert kinds == ["changed", "publish", "undo"] and state.lastPublish is None
    assert all(m.replied for m in state.messages.values())  # exactly one reply each


def test_a_publish_that_conflicts_with_the_live_site_changes_nothing_and_says_so(
    info: StackInfo, repos: Path, tmp_path: Path
) -> None:
    bare_path = _project(repos, "pier")
    talk = Conversation(info, "pier")
    talk.say('Please replace "Call us" with "Ring us".')

    # Meanwhile someone edits the same line on the live site's branch.
    colleague = tmp_path / "colleague"
    subprocess.run(["git", "clone", "-q", str(bare_path), str(colleague)], check=True)
    index = colleague / "src" / "index.html"
    index.write_text(index.read_text().replace("Call us", "Phone us"))
    who = ["-c", "user.name=Colleague", "-c", "user.email=colleague@example.com"]
    subprocess.run(["git", *who, "commit", "-qam", "Phone us"], cwd=colleague, check=True)
    subprocess.run(["git", "push", "-q", "origin", "HEAD:main"], cwd=colleague, check=True)
    theirs = git.Repo(bare_path).commit("main").hexsha

    result = talk.say("Publish it!")

    assert result["live"]["outcome"] == "conflict" and result["live"]["conflicts"] == ["src/index.html"]
    assert git.Repo(bare_path).commit("main").hexsha == theirs  # nothing changed
    reply = talk.last_reply()
    assert "Nothing was published" in reply and "src/index.html" in reply
