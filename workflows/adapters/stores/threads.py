"""The threads table: one row per thread, the one owner of thread -> project.

Intake claims a new thread's id here (with the SES message id that asked for it, so a redelivery of the same
mail finds its own claim); the workflow's ``Resolve thread`` state then fills in the user and subject with
``if_not_exists`` and refuses a thread of another project or branch. Nothing else maps a thread to a project.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from workflows import threads
from workflows.adapters.stores._dynamo import condition_failed

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

KEY_ATTRIBUTE = "threadId"


class ThreadRow(BaseModel):
    """A thread as stored. Intake's claim has project, branch and SES id; the workflow adds the rest."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    threadId: str
    projectId: str
    branch: str = ""
    userId: str = ""
    subject: str = ""
    sesId: str = ""  # the delivery that claimed the id
    createdAt: str = ""
    updatedAt: str = ""
    lastMessageId: str = ""


class ThreadsStore(Protocol):
    def get(self, thread_id: str) -> ThreadRow | None: ...

    def claim(self, thread_id: str, project_id: str, ses_id: str, at: str) -> bool:
        """Claim a new thread id for ``project_id`` on behalf of one delivery. True when the id is now this
        delivery's (claimed just now, or by an earlier try of the same delivery); False when it is taken."""
        ...

    def all(self) -> list[ThreadRow]: ...


def project_of(store: ThreadsStore, thread_id: str) -> str | None:
    row = store.get(thread_id)
    return row.projectId if row else None


class DynamoThreads:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._ddb = dynamodb
        self._table = table

    def get(self, thread_id: str) -> ThreadRow | None:
        item = self._ddb.get_item(
            TableName=self._table, Key={KEY_ATTRIBUTE: {"S": thread_id}}, ConsistentRead=True
        ).get("Item")
        return _row(item) if item and "projectId" in item else None

    def claim(self, thread_id: str, project_id: str, ses_id: str, at: str) -> bool:
        try:
            # An update, not a put: a retried claim must not erase what the workflow has added since.
            self._ddb.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": thread_id}},
                UpdateExpression=(
                    "SET projectId = if_not_exists(projectId, :p), branch = if_not_exists(branch, :b), "
                    "sesId = if_not_exists(sesId, :s), createdAt = if_not_exists(createdAt, :at)"
                ),
                ConditionExpression="attribute_not_exists(threadId) OR (sesId = :s AND projectId = :p)",
                ExpressionAttributeValues={
                    ":p": {"S": project_id},
                    ":b": {"S": threads.branch_for(thread_id)},
                    ":s": {"S": ses_id},
                    ":at": {"S": at},
                },
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def all(self) -> list[ThreadRow]:
        rows: list[ThreadRow] = []
        kwargs: dict[str, Any] = {"TableName": self._table}
        while True:
            page = self._ddb.scan(**kwargs)
            rows.extend(_row(item) for item in page.get("Items", []) if "projectId" in item)
            if "LastEvaluatedKey" not in page:
                return sorted(rows, key=lambda row: row.createdAt)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _row(item: Any) -> ThreadRow:
    return ThreadRow.model_validate({name: value["S"] for name, value in item.items() if "S" in value})


class InMemoryThreads:
    """The fake: the same contract, in a dict. ``resolve`` does what the workflow's ``Resolve thread`` does."""

    def __init__(self) -> None:
        self.rows: dict[str, ThreadRow] = {}

    def get(self, thread_id: str) -> ThreadRow | None:
        return self.rows.get(thread_id)

    def claim(self, thread_id: str, project_id: str, ses_id: str, at: str) -> bool:
        row = self.rows.get(thread_id)
        if row is None:
            branch = threads.branch_for(thread_id)
            self.rows[thread_id] = ThreadRow(
                threadId=thread_id, projectId=project_id, branch=branch, sesId=ses_id, createdAt=at
            )
            return True
        return row.sesId == ses_id and row.projectId == project_id

    def all(self) -> list[ThreadRow]:
        return sorted(self.rows.values(), key=lambda row: row.createdAt)
