"""Claude Code's headless protocol, read line by line (pure: no processes, no I/O).

``claude -p PROMPT --output-format stream-json --verbose`` prints one JSON object per line: ``system``
(subtype ``init``: session id, model, cwd, tools, permission mode), ``assistant`` (``message.content[]`` of
``text`` / ``thinking`` / ``tool_use``), ``user`` (``tool_result``), other types we skip, and last a ``result``
(``subtype`` success / error_max_turns / error_during_execution / error_max_budget_usd; ``is_error``,
``num_turns``, ``duration_ms``, ``session_id``, ``total_cost_usd``, ``result``). An API failure is
``subtype: success`` with ``is_error: true``. No ``result`` line at all means the CLI was cancelled or crashed.

:func:`parse_line` turns a line into a typed message (None for what we skip), :func:`progress` turns a tool
use into a short line for the owner ("editing src/pages/contact.astro"), and :func:`failure` names what went
wrong as the error the workflow routes, in words for the owner.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workflows.errors import (
    AgentApiError,
    AgentBudgetError,
    AgentCrashedError,
    AgentTurnLimitError,
    EditorFailedError,
)


class _Line(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SystemInit(_Line):
    type: Literal["system"]
    subtype: str = ""
    session_id: str = ""
    model: str = ""
    cwd: str = ""
    tools: list[str] = Field(default_factory=list)
    permissionMode: str = ""


class ToolUse(_Line):
    type: Literal["tool_use"]
    id: str = ""
    name: str = ""
    input: dict[str, Any] = Field(default_factory=dict)


class TextBlock(_Line):
    type: Literal["text"]
    text: str = ""


class OtherBlock(_Line):
    type: str  # thinking, tool_result, and whatever a newer CLI adds


class AssistantMessage(_Line):
    type: Literal["assistant"]
    session_id: str = ""
    content: list[ToolUse | TextBlock | OtherBlock] = Field(default_factory=list)


class UserMessage(_Line):
    type: Literal["user"]
    session_id: str = ""


class Result(_Line):
    type: Literal["result"]
    subtype: str = ""
    is_error: bool = False
    num_turns: int = 0
    duration_ms: int = 0
    session_id: str = ""
    total_cost_usd: float = 0.0
    result: str = ""
    terminal_reason: str = ""


StreamMessage = SystemInit | AssistantMessage | UserMessage | Result


def parse_line(line: str) -> StreamMessage | None:
    """One line of the stream as a typed message; None for blank lines, other types and lines that are not
    the protocol's JSON (a CLI may print a warning before it starts)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    try:
        match raw.get("type"):
            case "system":
                return SystemInit.model_validate(raw)
            case "assistant":
                message = raw.get("message")
                content = message.get("content", []) if isinstance(message, dict) else []
                blocks = [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []
                return AssistantMessage.model_validate(
                    {"type": "assistant", "session_id": raw.get("session_id", ""), "content": blocks}
                )
            case "user":
                return UserMessage.model_validate(raw)
            case "result":
                return Result.model_validate(raw)
    except ValidationError:
        return None
    return None


_VERBS = {
    "Edit": "editing",
    "MultiEdit": "editing",
    "Write": "writing",
    "Read": "reading",
    "NotebookEdit": "editing",
    "Glob": "looking for files",
    "Grep": "searching the files",
    "Bash": "running a command",
    "WebFetch": "reading a web page",
    "TodoWrite": "planning",
}


def progress(tool: ToolUse, checkout: str = "") -> str:
    """A short line for the owner about one tool use; never the tool's raw input beyond a file's path."""
    verb = _VERBS.get(tool.name, "working")
    path = tool.input.get("file_path") or tool.input.get("notebook_path") or ""
    if isinstance(path, str) and path:
        relative = path.removeprefix(checkout.rstrip("/") + "/") if checkout else path
        if not relative.startswith("/") and ".." not in PurePosixPath(relative).parts:
            return f"{verb} {relative}"
    return verb


class Transcript:
    """What a run said, folded as it streams: the session, the tool uses (bounded), the last words, the result."""

    MAX_PROGRESS = 50

    def __init__(self) -> None:
        self.session_id = ""
        self.progress: list[str] = []
        self.last_text = ""
        self.result: Result | None = None
        self.lines = 0

    def feed(self, line: str, checkout: str = "") -> str | None:
        """Fold one line in; the progress line it adds, if any (repeats are coalesced)."""
        message = parse_line(line)
        if message is None:
            return None
        self.lines += 1
        if message.session_id:
            self.session_id = message.session_id
        if isinstance(message, Result):
            self.result = message
        elif isinstance(message, AssistantMessage):
            added = None
            for block in message.content:
                if isinstance(block, TextBlock) and block.text.strip():
                    self.last_text = block.text.strip()
                elif isinstance(block, ToolUse):
                    step = progress(block, checkout)
                    if (not self.progress or self.progress[-1] != step) and len(self.progress) < self.MAX_PROGRESS:
                        self.progress.append(step)
                        added = step
            return added
        return None


def failure(transcript: Transcript, exit_status: int | None, tail: str) -> EditorFailedError | None:
    """The named error for how the run ended, or None when it succeeded. ``tail`` is the end of the CLI's
    output, kept for whoever looks after the site (the reply attaches it; the words never show it)."""
    result = transcript.result
    if result is None:
        return AgentCrashedError(f"The coding agent stopped without finishing (exit status {exit_status}).\n{tail}")
    if result.subtype == "error_max_turns":
        return AgentTurnLimitError(
            f"The coding agent used all {result.num_turns} of its turns before it finished.\n{tail}"
        )
    if result.subtype == "error_max_budget_usd":
        return AgentBudgetError(f"The coding agent reached its spending limit (${result.total_cost_usd:.2f}).\n{tail}")
    if result.is_error or result.subtype != "success":
        return AgentApiError(f"The coding agent could not reach its model or stopped with an error.\n{tail}")
    if exit_status not in (0, None):
        return AgentCrashedError(f"The coding agent exited with status {exit_status} after its result.\n{tail}")
    return None
