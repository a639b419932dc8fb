"""The event log in DynamoDB, as the Python side writes and reads it.

Protocol (the ASL follows the same two steps, see ``asl/message.asl.json``):

1. allocate: ``UpdateItem`` on the stream's head item, ``ADD lastSeq 1``, returning the new number;
2. append: ``PutItem`` of the event keyed by its deterministic ``eventId`` with
   ``attribute_not_exists(eventId)``, so a retried step cannot record the same fact twice.

A retried allocate leaves a gap in ``seq``; order is what matters, density is not.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from workflows import names
from workflows.events import StoredEvent


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventLog:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self._table = table

    def _allocate(self, stream: str) -> int:
        out = self._ddb.update_item(
            TableName=self._table,
            Key={"stream": {"S": stream}, "eventId": {"S": names.STREAM_HEAD_ID}},
            UpdateExpression="ADD lastSeq :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(out["Attributes"]["lastSeq"]["N"])

    def append(
        self, stream: str, event_id: str, type_: str, data: dict[str, Any], execution: str = ""
    ) -> StoredEvent | None:
        """Append once; returns None when an event with this id is already recorded."""
        seq = self._allocate(stream)
        event = StoredEvent(
            stream=stream, eventId=event_id, seq=seq, type=type_, at=now_iso(), execution=execution, data=data
        )
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "stream": {"S": stream},
                    "eventId": {"S": event_id},
                    "seq": {"N": str(seq)},
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
            "IndexName": names.EVENTS_TABLE.local_indexes[0].name,
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
