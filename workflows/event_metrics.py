"""Counting facts: each new event of the events table becomes one CloudWatch count (``lambdas/event_metrics``).

Dashboards and alarms count recorded events, never entries into the ASL's states, so the workflow can merge or
rename states without zeroing a graph. The events table streams its new items (``NEW_IMAGE``); an event is
stored once under its deterministic ``eventId`` and DynamoDB streams an ``INSERT`` only when an item is created,
so a retried step that writes the same fact again (a ``MODIFY`` at most) is not counted twice.

The Lambda publishes the counts with Powertools' metrics in the ``WebOrdinary`` namespace with the dimension
``service`` = :data:`SERVICE`; ``cdk/parts/observability.py`` graphs and alarms on them from there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from workflows.events import EventType, Failure, StoredEvent, UnknownEventTypeError, event_data

SERVICE = "webordinary-event-metrics"  # the Lambda's Powertools service: every metric's ``service`` dimension

METRIC_BY_EVENT: Mapping[EventType, str] = {
    EventType.MESSAGE_RECEIVED: "MessagesReceived",
    EventType.MESSAGE_REJECTED: "MessagesRejected",
    EventType.COMMAND_DISPATCHED: "CommandsDispatched",
    EventType.COMMAND_SUCCEEDED: "CommandsSucceeded",
    EventType.COMMAND_FAILED: "CommandsFailed",
    EventType.COMMAND_INTERRUPTED: "CommandsInterrupted",
    EventType.COMMAND_RETRIED: "CommandsRetried",
    EventType.COMMAND_DEAD_LETTERED: "CommandsDeadLettered",
    EventType.WORKER_LOST: "WorkersLost",
    EventType.REPLY_SENT: "RepliesSent",
    EventType.COMMAND_REDRIVEN: "CommandsRedriven",
    EventType.AGENT_PROGRESS: "AgentProgressSteps",
}
# A command lost to a Step Functions timeout (no heartbeat, or past its limit): a subset of WorkersLost and
# CommandsFailed that pages on its own.
COMMAND_TIMEOUTS = "CommandTimeouts"
TIMEOUT_ERRORS = frozenset({"States.Timeout", "States.HeartbeatTimeout"})
# A new item no event model reads: a writer and workflows/events.py have drifted apart.
UNREADABLE_EVENTS = "UnreadableEvents"
METRICS: tuple[str, ...] = (*METRIC_BY_EVENT.values(), COMMAND_TIMEOUTS, UNREADABLE_EVENTS)


@dataclass
class Tally:
    """What a batch of stream records adds up to: metric -> count (only those that occurred), and where each
    unreadable item is (``stream/eventId``), for the log."""

    counts: Counter[str] = field(default_factory=Counter)
    unreadable: list[str] = field(default_factory=list)


def tally(records: Iterable[Mapping[str, Any]]) -> Tally:
    """Count the events a batch of DynamoDB stream records created. Only ``INSERT`` records count (the event
    source mapping filters on it too). An unreadable item never fails the batch, which would hold up every later
    event of its shard: it is counted as unreadable (and by its type too when it has a known one: it happened)."""
    result = Tally()
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        image = record.get("dynamodb", {}).get("NewImage", {})
        try:
            event = StoredEvent.from_item(image)
        except (KeyError, TypeError, AttributeError, ValidationError):
            result.counts[UNREADABLE_EVENTS] += 1
            result.unreadable.append(_where(image))
            continue
        try:
            data = event_data(event)
        except (UnknownEventTypeError, ValidationError):
            data = None
            result.counts[UNREADABLE_EVENTS] += 1
            result.unreadable.append(f"{event.stream}/{event.eventId}")
        # A StrEnum key equals (and hashes as) its string, so the stored type looks itself up.
        metric = METRIC_BY_EVENT.get(event.type)  # type: ignore[call-overload]
        if metric is not None:
            result.counts[metric] += 1
        if isinstance(data, Failure) and data.Error in TIMEOUT_ERRORS:
            result.counts[COMMAND_TIMEOUTS] += 1
    return result


def _where(image: Any) -> str:
    """``stream/eventId`` of a raw item, as far as it has them."""
    if not isinstance(image, Mapping):
        return "?/?"
    keys = (image.get("stream"), image.get("eventId"))
    return "/".join(str(key.get("S", "?")) if isinstance(key, Mapping) else "?" for key in keys)
