"""Events and the thread projection (pure).

Every fact of consequence is an immutable event in a stream (one per thread). The workflow appends most of
them directly from the ASL (DynamoDB putItem with ``attribute_not_exists``), the inbound handler appends
rejections; both follow the protocol in :mod:`workflows.adapters.eventlog`. A thread's state is ``fold(events)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workflows.models import CommandResult, LiveChange, WorkerReady


class EventType(StrEnum):
    MESSAGE_RECEIVED = "MessageReceived"
    MESSAGE_REJECTED = "MessageRejected"
    COMMAND_DISPATCHED = "CommandDispatched"
    COMMAND_SUCCEEDED = "CommandSucceeded"
    COMMAND_FAILED = "CommandFailed"
    REPLY_SENT = "ReplySent"
    WORKER_LOST = "WorkerLost"
    COMMAND_RETRIED = "CommandRetried"
    COMMAND_INTERRUPTED = "CommandInterrupted"
    COMMAND_DEAD_LETTERED = "CommandDeadLettered"
    COMMAND_REDRIVEN = "CommandRedriven"
    AGENT_PROGRESS = "AgentProgress"  # recorded by the worker while the coding agent works, not by the ASL


class StoredEvent(BaseModel):
    """One event as stored: ``data`` is the JSON the writer recorded (the ASL writes it as a JSON string)."""

    model_config = ConfigDict(frozen=True)

    stream: str
    eventId: str
    # The read order (see workflows/adapters/eventlog.py); an event recorded before it existed sorts by its time.
    order: str = ""
    type: str
    at: str
    execution: str = ""
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> StoredEvent:
        """From a low-level DynamoDB item (``{"S": ...}``-typed attributes)."""
        raw = item.get("data", {}).get("S", "{}")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = {"unparsed": raw}
        return cls(
            stream=item["stream"]["S"],
            eventId=item["eventId"]["S"],
            order=item.get("order", {}).get("S", ""),
            type=item["type"]["S"],
            at=item.get("at", {}).get("S", ""),
            execution=item.get("execution", {}).get("S", ""),
            data=data if isinstance(data, dict) else {"value": data},
        )


# --- what each event type records (its ``data``) -----------------------------------------------------------


class EventData(BaseModel):
    # Readers ignore fields they do not know (a newer writer may add some), never ones they need.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class ThreadFacts(EventData):
    """The thread a message resolved to (the threads table's row, as Resolve thread returned it)."""

    projectId: str
    userId: str
    branch: str


class MessageReceived(EventData):
    messageId: str
    sender: str
    subject: str
    messageKey: str
    newThread: bool
    redrive: int
    thread: ThreadFacts


class MessageRejected(EventData):
    messageId: str
    reason: str
    detail: str
    sender: str
    rawKey: str
    notice: str


class Failure(EventData):
    """How a step ended badly, as Step Functions' Catch hands it over (``Error``, ``Cause``)."""

    Error: str
    Cause: str = ""


class ReplySent(EventData):
    sesMessageId: str
    replyMessageId: str


class CommandRedriven(EventData):
    from_: str = Field(alias="from")
    to: str
    failure: dict[str, Any] = Field(default_factory=dict)


class AgentProgress(EventData):
    """One step of a coding agent's work, as it happens ("editing src/pages/contact.astro"): coalesced and
    bounded per run (``n`` counts from 1), for ``webordinary events`` now and a chat channel later."""

    step: str
    n: int


EVENT_DATA: dict[EventType, type[BaseModel]] = {
    EventType.MESSAGE_RECEIVED: MessageReceived,
    EventType.MESSAGE_REJECTED: MessageRejected,
    EventType.COMMAND_DISPATCHED: WorkerReady,
    EventType.COMMAND_SUCCEEDED: CommandResult,
    EventType.COMMAND_FAILED: Failure,
    EventType.REPLY_SENT: ReplySent,
    EventType.WORKER_LOST: Failure,
    EventType.COMMAND_RETRIED: Failure,
    EventType.COMMAND_INTERRUPTED: Failure,  # its Cause is the worker's JSON account of the interruption
    EventType.COMMAND_DEAD_LETTERED: Failure,
    EventType.COMMAND_REDRIVEN: CommandRedriven,
    EventType.AGENT_PROGRESS: AgentProgress,
}


class UnknownEventTypeError(ValueError):
    """An event whose type has no model: a writer records something no reader understands."""


def event_data(event: StoredEvent) -> BaseModel:
    """The event's data as its type's model; raises UnknownEventTypeError or pydantic's ValidationError."""
    try:
        model = EVENT_DATA[EventType(event.type)]
    except ValueError:
        raise UnknownEventTypeError(f"no model for event type {event.type!r}") from None
    return model.model_validate(event.data)


class MessageState(BaseModel):
    messageId: str
    messageKey: str = ""  # the normalised mail in the mail bucket
    execution: str = ""
    status: str = "received"
    kind: str = ""  # the result's kind: changed, stopped, publish, undo, paused
    summary: str = ""  # what the command did, in the result's words
    # What the command cost: the agent's dollars and turns (claude-code), and its wall time.
    costUsd: float = 0.0
    turns: int = 0
    wallMs: int = 0
    workerId: str = ""
    commit: str = ""
    previewUrl: str = ""
    error: str = ""
    replied: bool = False
    working: str = ""  # the coding agent's latest step while the command runs


class ThreadState(BaseModel):
    """The fold of a thread's events."""

    threadId: str
    projectId: str = ""
    userId: str = ""
    branch: str = ""
    lastEvent: str = ""  # the order key of the last event folded in
    messages: dict[str, MessageState] = Field(default_factory=dict)
    lastCommit: str = ""
    previewUrl: str = ""
    # The coding agent's session to resume in this thread, once an agent reports one (issue 12's claude-code).
    agentSessionId: str = ""
    # What the thread's commands cost so far (agent dollars; wall time).
    costUsd: float = 0.0
    wallMs: int = 0
    # The change the owner last saw in a reply (a preview of it): what PUBLISH puts live.
    shownCommit: str = ""
    # The thread's publish, while it is the thread's last step (UNDO then rolls the live site back too).
    lastPublish: LiveChange | None = None
    # The message whose change paused when the month's allowance ran out, until a later change finishes:
    # CONTINUE carries it on.
    pausedMessage: str = ""

    @property
    def status(self) -> str:
        if not self.messages:
            return "empty"
        return list(self.messages.values())[-1].status

    @property
    def working(self) -> str:
        """What the coding agent is doing now, while the thread's latest command runs ("" otherwise)."""
        if not self.messages:
            return ""
        latest = list(self.messages.values())[-1]
        return latest.working if latest.status in ("received", "dispatched") else ""


def _message(state: ThreadState, event: StoredEvent) -> MessageState:
    # Event ids are "{SES message id}#{type}" (see asl/message.asl.json), so the id names the message.
    message_id = event.eventId.split("#", 1)[0]
    if message_id not in state.messages:
        state.messages[message_id] = MessageState(messageId=message_id, execution=event.execution)
    return state.messages[message_id]


def evolve(state: ThreadState, event: StoredEvent) -> ThreadState:
    """Apply one event, read through its type's model. A type this code does not know is left out of the
    projection (a newer writer's); a known type whose data does not fit its model raises."""
    try:
        data = event_data(event)
    except UnknownEventTypeError:
        return state
    state = state.model_copy(deep=True)
    state.lastEvent = max(state.lastEvent, read_order(event))
    match data:
        case MessageReceived(thread=thread, messageKey=message_key):
            _message(state, event).messageKey = message_key
            state.projectId, state.userId, state.branch = thread.projectId, thread.userId, thread.branch
        case WorkerReady(workerId=worker_id):
            message = _message(state, event)
            message.status = "dispatched"
            message.workerId = worker_id
        case CommandResult(commit=commit, previewUrl=preview_url, kind=kind, live=live, agent=agent):
            message = _message(state, event)
            if agent is not None:
                state.agentSessionId = agent.sessionId or state.agentSessionId
                message.costUsd, message.turns = agent.costUsd, agent.turns
                state.costUsd += agent.costUsd
            message.wallMs = data.timings.totalMs
            state.wallMs += data.timings.totalMs
            message.status = "succeeded"
            message.working = ""
            message.commit, message.previewUrl, message.kind = commit, preview_url, kind
            message.summary = data.summary
            if kind == "paused":
                state.pausedMessage = message.messageId
            elif kind in ("changed", "undo"):
                state.pausedMessage = ""
            if kind in ("changed", "undo"):
                state.lastCommit = commit or state.lastCommit
                state.previewUrl = preview_url or state.previewUrl
            if kind == "publish" and live is not None and live.outcome == "published":
                state.lastPublish = live
            elif kind == "changed" or (kind == "undo" and live is not None and live.outcome == "undone"):
                state.lastPublish = None  # the publish is no longer the thread's last step
        case ReplySent():
            message = _message(state, event)
            message.replied = True
            if message.kind in ("changed", "undo") and message.commit:
                state.shownCommit = message.commit
        case AgentProgress(step=step):
            message = _message(state, event)
            if message.status in ("received", "dispatched"):
                message.working = step
        case CommandRedriven():
            _message(state, event).status = "redriven"
        case Failure(Error=error):
            message = _message(state, event)
            message.status = _FAILURE_STATUS[EventType(event.type)]
            if message.status != "retrying":
                message.error = error
    return state


_FAILURE_STATUS = {
    EventType.COMMAND_FAILED: "failed",
    EventType.WORKER_LOST: "retrying",
    EventType.COMMAND_RETRIED: "retrying",
    EventType.COMMAND_INTERRUPTED: "interrupted",
    EventType.COMMAND_DEAD_LETTERED: "dead-lettered",
}


def read_order(event: StoredEvent) -> str:
    """What events are ordered by (the event log's ``order``; the time for an event recorded before it)."""
    return event.order or event.at


def fold(thread_id: str, events: Iterable[StoredEvent]) -> ThreadState:
    state = ThreadState(threadId=thread_id)
    for event in sorted(events, key=read_order):
        state = evolve(state, event)
    return state


def describe(event: StoredEvent) -> str:
    """One line about an event for ``webordinary events``: a command's outcome and cost in words, else its data."""
    try:
        data = event_data(event)
    except (UnknownEventTypeError, ValueError):
        return json.dumps(event.data)[:100]
    if isinstance(data, CommandResult):
        parts = [data.kind, f"commit {data.commit[:7]}" if data.commit else "", f"{data.timings.totalMs / 1000:.1f} s"]
        if data.agent is not None:
            parts.append(f"${data.agent.costUsd:.4f}, {data.agent.turns} turns")
            if data.agent.progress:
                parts.append("; ".join(data.agent.progress[:5]) + (" ..." if len(data.agent.progress) > 5 else ""))
        if data.live is not None:
            parts.append(data.live.outcome)
        return ", ".join(part for part in parts if part)
    if isinstance(data, AgentProgress):
        return f"{data.n}. {data.step}"
    return json.dumps(event.data)[:100]
