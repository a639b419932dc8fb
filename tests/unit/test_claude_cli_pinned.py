"""The pinned Claude Code CLI (container/Dockerfile's CLAUDE_CODE_VERSION) takes every flag the worker passes and
speaks the protocol agent_stream reads. Runs the real binary with no API key: it starts, reports itself in an
init line, and ends in an error result (not logged in) that the worker names AgentApiError. .ci/run installs the
pinned version under .webordinary/claude-cli; without it (no npm) the test skips and says why."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from container.worker.agent_stream import Result, SystemInit, Transcript, failure, parse_line
from container.worker.editors import AgentConfig, ClaudeCodeEditor
from workflows.errors import AgentApiError

ROOT = Path(__file__).parents[2]
PIN = re.search(r"^ARG CLAUDE_CODE_VERSION=(\S+)$", (ROOT / "container" / "Dockerfile").read_text(), re.MULTILINE)
CLI = ROOT / ".webordinary" / "claude-cli" / "node_modules" / ".bin" / "claude"


def _pinned() -> str | None:
    if PIN is None or not CLI.exists():
        return None
    done = subprocess.run([str(CLI), "--version"], capture_output=True, text=True, timeout=60)
    return str(CLI) if done.stdout.startswith(PIN.group(1)) else None


PINNED = _pinned()
needs_cli = pytest.mark.skipif(
    PINNED is None, reason=f"the pinned Claude Code CLI is not installed at {CLI} (.ci/run installs it with npm)"
)


def test_the_image_pins_a_version() -> None:
    assert PIN is not None and re.fullmatch(r"\d+\.\d+\.\d+", PIN.group(1))


@needs_cli
def test_every_flag_we_pass_exists_and_the_stream_is_what_we_parse(tmp_path: Path) -> None:
    assert PINNED is not None
    editor = ClaudeCodeEditor(
        AgentConfig(executable=PINNED, model="claude-sonnet-4-5", budget_usd=0.5, max_turns=3), timeout=60
    )
    argv = editor.argv("Say hello.", resume="")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(tmp_path / ".claude")}
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert "unknown option" not in done.stderr, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    first, last = parse_line(lines[0]), parse_line(lines[-1])
    assert isinstance(first, SystemInit) and first.session_id and first.permissionMode == "acceptEdits"
    assert isinstance(last, Result) and last.is_error  # no key: not logged in
    transcript = Transcript()
    for line in lines:
        transcript.feed(line, str(tmp_path))
    assert isinstance(failure(transcript, done.returncode, ""), AgentApiError)


@needs_cli
def test_an_unknown_flag_is_refused_so_the_test_above_means_something(tmp_path: Path) -> None:
    assert PINNED is not None
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    done = subprocess.run([PINNED, "-p", "x", "--no-such-flag"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "unknown option" in done.stderr
