"""Events and the thread projection (pure).

Every fact of consequence is an immutable event in a stream (one per thread). The workflow appends most of
them directly from the ASL (DynamoDB putItem with ``attribute_not_exists``), the inbound handler appends
rejections; both follow the protocol in :mod:`workflows.eventlog`. A thread's state is ``fold(events)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class StoredEvent(BaseModel):
    """One event as stored: ``data`` is the JSON the writer recorded (the ASL writes it as a JSON string)."""

    model_config = ConfigDict(frozen=True)

    stream: str
    eventId: str
    # The read order (see workflows/eventlog.py); an event recorded before it existed sorts by its time.
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


class MessageState(BaseModel):
    messageId: str
    execution: str = ""
    status: str = "received"
    workerId: str = ""
    commit: str = ""
    previewUrl: str = ""
    error: str = ""
    replied: bool = False


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

    @property
    def status(self) -> str:
        if not self.messages:
            return "empty"
        return list(self.messages.values())[-1].status


def _message(state: ThreadState, event: StoredEvent) -> MessageState:
    # Event ids are "{SES message id}#{type}" (see asl/message.asl.json), so the id names the message.
    message_id = event.eventId.split("#", 1)[0]
    if message_id not in state.messages:
        state.messages[message_id] = MessageState(messageId=message_id, execution=event.execution)
    return state.messages[message_id]


def evolve(state: ThreadState, event: StoredEvent) -> ThreadState:
    """Apply one event. Unknown types are kept out of the projection rather than failing old streams."""
    state = state.model_copy(deep=True)
    state.lastEvent = max(state.lastEvent, read_order(event))
    data = event.data
    match event.type:
        case EventType.MESSAGE_RECEIVED:
            _message(state, event)
            thread = data.get("thread", {})  # the thread the message resolved to
            state.projectId = str(thread.get("projectId", state.projectId))
            state.userId = str(thread.get("userId", state.userId))
            state.branch = str(thread.get("branch", state.branch))
        case EventType.COMMAND_DISPATCHED:
            message = _message(state, event)
            message.status = "dispatched"
            message.workerId = str(data.get("workerId", message.workerId))
        case EventType.COMMAND_SUCCEEDED:
            message = _message(state, event)
            message.status = "succeeded"
            message.commit = str(data.get("commit", ""))
            message.previewUrl = str(data.get("previewUrl", ""))
            state.lastCommit = message.commit or state.lastCommit
            state.previewUrl = message.previewUrl or state.previewUrl
        case EventType.COMMAND_FAILED:
            message = _message(state, event)
            message.status = "failed"
            message.error = str(data.get("Error", data.get("error", "")))
        case EventType.REPLY_SENT:
            _message(state, event).replied = True
        case EventType.WORKER_LOST | EventType.COMMAND_RETRIED:
            _message(state, event).status = "retrying"
        case EventType.COMMAND_INTERRUPTED:
            message = _message(state, event)
            message.status = "interrupted"
            message.error = str(data.get("Error", ""))
        case EventType.COMMAND_DEAD_LETTERED:
            message = _message(state, event)
            message.status = "dead-lettered"
            message.error = str(data.get("Error", ""))
        case EventType.COMMAND_REDRIVEN:
            _message(state, event).status = "redriven"
    return state


def read_order(event: StoredEvent) -> str:
    """What events are ordered by (the event log's ``order``; the time for an event recorded before it)."""
    return event.order or event.at


def fold(thread_id: str, events: Iterable[StoredEvent]) -> ThreadState:
    state = ThreadState(threadId=thread_id)
    for event in sorted(events, key=read_order):
        state = evolve(state, event)
    return state
