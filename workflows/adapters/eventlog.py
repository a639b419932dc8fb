"""The event log in DynamoDB, as the Python side writes and reads it.

Protocol (the ASL follows it too, see ``asl/message.asl.json``): ``PutItem`` of the event keyed by its
deterministic ``eventId`` with ``attribute_not_exists(eventId)``, so a retried step cannot record the same fact
twice. Events are read in the order of their ``order`` attribute, ``{time}#{writer}#{what}``: the time in
Step Functions' format (UTC, milliseconds, ``Z``), then the execution (or writer) and the state (or event type)
to break ties. No counter: a retried state rebuilds the same key (its entered time is the state's, not the
attempt's), and nothing needs the numbers to be dense.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from workflows import names
from workflows.events import StoredEvent


def now_iso() -> str:
    """Now, as Step Functions writes ``$$.State.EnteredTime``: UTC, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def order_key(at: str, writer: str, what: str) -> str:
    """The sort key of an event: the ASL builds the same from EnteredTime, execution name and state name."""
    return f"{at}#{writer}#{what}"


class EventStore(Protocol):
    def append(
        self, stream: str, event_id: str, type_: str, data: dict[str, Any], execution: str = ""
    ) -> StoredEvent | None:
        """Append once; returns None when an event with this id is already recorded."""
        ...

    def read(self, stream: str) -> list[StoredEvent]:
        """The stream's events in ``order``."""
        ...


def _new_event(stream: str, event_id: str, type_: str, data: dict[str, Any], execution: str) -> StoredEvent:
    at = now_iso()
    return StoredEvent(
        stream=stream,
        eventId=event_id,
        order=order_key(at, execution or "python", event_id),
        type=type_,
        at=at,
        execution=execution,
        data=data,
    )


class EventLog:
    """The event store on its DynamoDB table."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self._table = table

    def append(
        self, stream: str, event_id: str, type_: str, data: dict[str, Any], execution: str = ""
    ) -> StoredEvent | None:
        event = _new_event(stream, event_id, type_, data, execution)
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "stream": {"S": stream},
                    "eventId": {"S": event_id},
                    "order": {"S": event.order},
                    "type": {"S": type_},
                    "at": {"S": event.at},
                    "execution": {"S": execution},
                    "data": {"S": json.dumps(data, sort_keys=True)},
                },
                ConditionExpression="attribute_not_exists(eventId)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return event

    def read(self, stream: str) -> list[StoredEvent]:
        events: list[StoredEvent] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": names.EVENT_ORDER_INDEX,
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "stream"},
            "ExpressionAttributeValues": {":s": {"S": stream}},
            "ConsistentRead": True,
        }
        while True:
            page = self._ddb.query(**kwargs)
            events.extend(StoredEvent.from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return events
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class InMemoryEventLog:
    """The fake: the same contract, in a dict of lists."""

    def __init__(self) -> None:
        self.streams: dict[str, dict[str, StoredEvent]] = {}

    def append(
        self, stream: str, event_id: str, type_: str, data: dict[str, Any], execution: str = ""
    ) -> StoredEvent | None:
        events = self.streams.setdefault(stream, {})
        if event_id in events:
            return None
        # Stored as DynamoDB stores it: the data goes through JSON.
        event = _new_event(stream, event_id, type_, json.loads(json.dumps(data, sort_keys=True)), execution)
        events[event_id] = event
        return event

    def read(self, stream: str) -> list[StoredEvent]:
        return sorted(self.streams.get(stream, {}).values(), key=lambda event: event.order)
