"""The ownership table: which worker owns a project+user pair, under a lease its heartbeats renew.

One row per active pair, keyed ``{project}#{user}`` (:data:`OWNER_KEY_FORMAT`; the workflow's ``Find owner``
and ``Release the lost worker`` states build the same key, and a test holds their ``States.Format`` to this
format). The row also notes the command the owner is running, so the reaper can fail it the moment the
worker's task stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from workflows.adapters.stores._dynamo import condition_failed

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

KEY_ATTRIBUTE = "ownerKey"
OWNER_KEY_FORMAT = "{}#{}"  # project, user: as the ASL's States.Format('{}#{}', $.projectId, $.userId)
LEASE_SECONDS = 900


def owner_key(project_id: str, user_id: str) -> str:
    return OWNER_KEY_FORMAT.format(project_id, user_id)


class OwnershipRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    ownerKey: str
    projectId: str = ""
    userId: str = ""
    workerId: str = ""
    queueUrl: str = ""
    claimedAt: int = 0
    expiresAt: int = 0
    currentToken: str = ""  # the task token of the command the owner is running, if any
    currentExecution: str = ""


class OwnershipStore(Protocol):
    def claim(self, project_id: str, user_id: str, worker_id: str, queue_url: str) -> OwnershipRow | None:
        """Own the pair unless a live owner does (our own row, or an expired lease, may be taken over).
        None when the pair is now ``worker_id``'s; otherwise the live owner's row."""
        ...

    def renew(self, project_id: str, user_id: str, worker_id: str) -> bool:
        """Extend the lease; False when ``worker_id`` no longer owns the pair."""
        ...

    def release(self, key: str, worker_id: str) -> bool:
        """Give the pair up, only if ``worker_id`` still owns it."""
        ...

    def note_running(self, project_id: str, user_id: str, worker_id: str, token: str, execution: str) -> bool: ...

    def clear_running(self, project_id: str, user_id: str, worker_id: str) -> bool: ...

    def held_by(self, worker_id: str) -> list[OwnershipRow]: ...

    def get(self, project_id: str, user_id: str) -> OwnershipRow | None: ...


def _row(item: dict[str, Any]) -> OwnershipRow:
    return OwnershipRow.model_validate({name: next(iter(value.values())) for name, value in item.items()})


class DynamoOwnership:
    def __init__(self, dynamodb: DynamoDBClient, table: str, clock: Callable[[], float] = time.time) -> None:
        self._ddb = dynamodb
        self._table = table
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def claim(self, project_id: str, user_id: str, worker_id: str, queue_url: str) -> OwnershipRow | None:
        key, now = owner_key(project_id, user_id), self._now()
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    KEY_ATTRIBUTE: {"S": key},
                    "projectId": {"S": project_id},
                    "userId": {"S": user_id},
                    "workerId": {"S": worker_id},
                    "queueUrl": {"S": queue_url},
                    "claimedAt": {"N": str(now)},
                    "expiresAt": {"N": str(now + LEASE_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(ownerKey) OR workerId = :me OR expiresAt < :now",
                ExpressionAttributeValues={":me": {"S": worker_id}, ":now": {"N": str(now)}},
            )
        except ClientError as exc:
            if not condition_failed(exc):
                raise
            return self.get(project_id, user_id) or OwnershipRow(ownerKey=key, queueUrl=queue_url)
        return None

    def _update_own(self, key: str, worker_id: str, update: str, values: dict[str, Any]) -> bool:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": key}},
                UpdateExpression=update,
                ConditionExpression="workerId = :me",
                ExpressionAttributeValues={":me": {"S": worker_id}, **values},
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def renew(self, project_id: str, user_id: str, worker_id: str) -> bool:
        expires = {":exp": {"N": str(self._now() + LEASE_SECONDS)}}
        return self._update_own(owner_key(project_id, user_id), worker_id, "SET expiresAt = :exp", expires)

    def release(self, key: str, worker_id: str) -> bool:
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": key}},
                ConditionExpression="workerId = :me",
                ExpressionAttributeValues={":me": {"S": worker_id}},
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def note_running(self, project_id: str, user_id: str, worker_id: str, token: str, execution: str) -> bool:
        values = {":t": {"S": token}, ":e": {"S": execution}}
        update = "SET currentToken = :t, currentExecution = :e"
        return self._update_own(owner_key(project_id, user_id), worker_id, update, values)

    def clear_running(self, project_id: str, user_id: str, worker_id: str) -> bool:
        update = "REMOVE currentToken, currentExecution"
        return self._update_own(owner_key(project_id, user_id), worker_id, update, {})

    def held_by(self, worker_id: str) -> list[OwnershipRow]:
        """The table holds one row per active pair (tens to hundreds), so a filtered scan is cheaper than an
        index written on every claim and lease renewal."""
        rows: list[OwnershipRow] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "workerId = :w",
            "ExpressionAttributeValues": {":w": {"S": worker_id}},
            "ConsistentRead": True,
        }
        while True:
            page = self._ddb.scan(**kwargs)
            rows.extend(_row(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return rows
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, project_id: str, user_id: str) -> OwnershipRow | None:
        item = self._ddb.get_item(
            TableName=self._table, Key={KEY_ATTRIBUTE: {"S": owner_key(project_id, user_id)}}, ConsistentRead=True
        ).get("Item")
        return _row(item) if item else None


class InMemoryOwnership:
    """The fake: the same contract, in a dict."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.rows: dict[str, OwnershipRow] = {}
        self._clock = clock

    def claim(self, project_id: str, user_id: str, worker_id: str, queue_url: str) -> OwnershipRow | None:
        key, now = owner_key(project_id, user_id), int(self._clock())
        row = self.rows.get(key)
        if row is not None and row.workerId != worker_id and row.expiresAt >= now:
            return row
        self.rows[key] = OwnershipRow(
            ownerKey=key,
            projectId=project_id,
            userId=user_id,
            workerId=worker_id,
            queueUrl=queue_url,
            claimedAt=now,
            expiresAt=now + LEASE_SECONDS,
        )
        return None

    def _own(self, key: str, worker_id: str) -> OwnershipRow | None:
        row = self.rows.get(key)
        return row if row is not None and row.workerId == worker_id else None

    def renew(self, project_id: str, user_id: str, worker_id: str) -> bool:
        key = owner_key(project_id, user_id)
        row = self._own(key, worker_id)
        if row is not None:
            self.rows[key] = row.model_copy(update={"expiresAt": int(self._clock()) + LEASE_SECONDS})
        return row is not None

    def release(self, key: str, worker_id: str) -> bool:
        if self._own(key, worker_id) is None:
            return False
        del self.rows[key]
        return True

    def note_running(self, project_id: str, user_id: str, worker_id: str, token: str, execution: str) -> bool:
        key = owner_key(project_id, user_id)
        row = self._own(key, worker_id)
        if row is not None:
            self.rows[key] = row.model_copy(update={"currentToken": token, "currentExecution": execution})
        return row is not None

    def clear_running(self, project_id: str, user_id: str, worker_id: str) -> bool:
        key = owner_key(project_id, user_id)
        row = self._own(key, worker_id)
        if row is not None:
            self.rows[key] = row.model_copy(update={"currentToken": "", "currentExecution": ""})
        return row is not None

    def held_by(self, worker_id: str) -> list[OwnershipRow]:
        return [row for row in self.rows.values() if row.workerId == worker_id]

    def get(self, project_id: str, user_id: str) -> OwnershipRow | None:
        return self.rows.get(owner_key(project_id, user_id))
