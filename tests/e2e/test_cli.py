"""The webordinary command, run as a user runs it: as subprocesses, finding the stack via the state dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

from tests.conftest import FIXTURES
from workflows.local import operations
from workflows.local.demo import create_demo_repository

pytestmark = pytest.mark.e2e
CLI = str(Path(sys.executable).parent / "webordinary")


def _run(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`webordinary local up` in the background; every other command finds it through WEBORDINARY_STATE_DIR."""
    state = tmp_path_factory.mktemp("cli-stack")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEBORDINARY_", "MOTO_"))}
    env["WEBORDINARY_STATE_DIR"] = str(state)
    process = subprocess.Popen(
        [CLI, "local", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not (state / "stack.json").exists():
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        assert time.monotonic() < deadline, "local up did not start"
        time.sleep(0.1)
    try:
        yield env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        assert not (state / "stack.json").exists()  # a clean stop removes it


def test_demo_json_really_did_it(tmp_path: Path, running_stack: dict[str, str]) -> None:
    # A second stack beside the one `local up` runs: separate state dirs, separate ports.
    env = dict(running_stack, WEBORDINARY_STATE_DIR=str(tmp_path / "demo"))
    done = _run("demo", "--json", env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout[done.stdout.index("{") :])
    assert report["ok"] and report["problems"] == []
    assert report["status"] == "SUCCEEDED"
    assert report["branch"] == f"thread-{report['threadId']}"
    assert report["execution"].startswith(report["threadId"])
    assert len(report["commit"]) == 40
    assert ".preview.localhost:" in report["previewUrl"] and report["previewStatus"] == 200
    assert report["reply"]["to"] == ["owner@example.com"]
    assert report["reply"]["replyTo"] == f"demo+{report['threadId']}@mail.webordinary.test"
    assert report["previewUrl"] in report["reply"]["text"]
    bare = git.Repo(tmp_path / "demo" / "repos" / "demo-site.git")
    assert bare.commit(report["branch"]).hexsha == report["commit"]
    assert not (tmp_path / "demo" / "stack.json").exists()  # the demo stopped its stack


def test_cli_flow_against_a_running_stack(tmp_path: Path, running_stack: dict[str, str]) -> None:
    env = running_stack
    repo = create_demo_repository(tmp_path)
    added = _run(
        "project",
        "add",
        "shop",
        "--repo",
        str(repo),
        "--allow",
        "alice@example.com,bob@example.com",
        "--build",
        "python3 build.py",
        "--json",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["address"] == "shop@mail.webordinary.test"
    assert json.loads(added.stdout)["project"] == "shop"

    mail = tmp_path / "change.eml"
    mail.write_bytes((FIXTURES / "mail" / "change-call-us.eml").read_bytes().replace(b"bakery@", b"shop@"))
    sent = _run("local", "email", str(mail), "--wait", "--json", env=env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    outcome = json.loads(sent.stdout[sent.stdout.index("{") :])
    assert outcome["accepted"] and outcome["rejected"] is None and outcome["status"] == "SUCCEEDED"
    thread, arn = outcome["threadId"], outcome["executionArn"]

    again = _run("local", "email", str(mail), "--json", env=env)  # the same mail again: no second execution
    again_outcome = json.loads(again.stdout[again.stdout.index("{") :])
    assert again_outcome["executionArn"] == arn and again_outcome["duplicate"]

    threads = json.loads(_run("threads", "--json", env=env).stdout)
    assert [t["threadId"] for t in threads] == [thread]
    # What the CLI shows of a thread is the fold of its events: the last command's outcome and commit.
    assert threads[0]["projectId"] == "shop" and threads[0]["branch"] == f"thread-{thread}"
    assert threads[0]["status"] == "succeeded" and len(threads[0]["lastCommit"]) == 40
    assert threads[0]["previewUrl"] and "agentSessionId" in threads[0]
    assert threads[0]["costUsd"] == 0 and threads[0]["wallMs"] > 0  # the replace editor costs no dollars
    assert "$0.0000" in _run("threads", env=env).stdout
    described = _run("events", thread, env=env).stdout
    assert ", commit " in described and " state transitions" in described  # a command's outcome and cost

    events = json.loads(_run("events", thread, "--json", env=env).stdout)
    assert [e["type"] for e in events][:2] == ["MessageReceived", "CommandDispatched"]
    assert [e["type"] for e in events][-1] == "ReplySent"
    assert all({"order", "type", "at", "execution", "data"} <= set(e) for e in events)
    (succeeded,) = [e for e in events if e["type"] == "CommandSucceeded"]
    assert 10 <= succeeded["transitions"] <= 40  # the execution's states, counted from its history

    traced = _run("trace", arn, "--json", env=env)
    steps = [s["state"] for s in json.loads(traced.stdout)["steps"]]
    assert steps[0] == "Start" and "Run command" in steps and steps[-1] == "Done"
    plain = _run("trace", arn.rsplit(":", 1)[-1], env=env)  # by name, human-readable
    assert "SUCCEEDED" in plain.stdout and "Run command" in plain.stdout

    outbox = json.loads(_run("outbox", "--json", env=env).stdout)
    assert len(outbox) == 1
    reply = outbox[0]
    assert {"to", "subject", "text", "messageId", "inReplyTo", "replyTo", "threadId"} <= set(reply)
    assert reply["threadId"] == thread and reply["inReplyTo"] == "<CAF1234-call-us@mail.example.com>"
    preview = next(
        line.split(": ", 1)[1].strip() for line in reply["text"].splitlines() if line.startswith("See it here:")
    )
    assert "Ring us" in operations.fetch_preview(preview).text

    # A project's settings change without re-adding it; bad settings are refused in plain words.
    agentic = _run(
        "project", "add", "agentic", "--repo", str(repo), "--allow", "alice@example.com",
        "--editor", "claude-code", "--model", "claude-sonnet-4-5", "--max-turns", "12", "--json", env=env,
    )  # fmt: skip
    config = json.loads(agentic.stdout)["config"]
    assert (config["editor"], config["agentModel"], config["agentMaxTurns"]) == ("claude-code", "claude-sonnet-4-5", 12)
    changed = _run("project", "set", "agentic", "agentMaxTurns=40", "publishWords=ship it,go live", "--json", env=env)
    assert changed.returncode == 0, changed.stderr
    config = json.loads(changed.stdout)["config"]
    assert config["agentMaxTurns"] == 40 and config["publishWords"] == ["ship it", "go live"]
    refused = _run("project", "set", "agentic", "agentMaxTurns=lots", env=env)
    assert refused.returncode != 0 and "whole number" in refused.stderr
    assert _run("project", "set", "nosuch", "editor=replace", env=env).returncode != 0

    rejected_mail = tmp_path / "stranger.eml"
    rejected_mail.write_bytes(mail.read_bytes().replace(b"alice@example.com", b"eve@example.org"))
    rejected = _run("local", "email", str(rejected_mail), "--json", env=env)
    assert rejected.returncode == 1
    assert json.loads(rejected.stdout[rejected.stdout.index("{") :])["rejected"] == "sender-not-allowed"


def test_commands_without_a_stack_say_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBORDINARY_")}
    env["WEBORDINARY_STATE_DIR"] = str(tmp_path / "nothing-here")
    done = _run("threads", env=env)
    assert done.returncode == 1 and "no embedded stack is running" in done.stderr
