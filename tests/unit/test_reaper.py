from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from workflows import names
from workflows.reaper import reap_stopped_task

TASK = "arn:aws:ecs:us-east-1:123456789012:task/webordinary-workers/0123456789abcdef0123456789abcdef"
DEAD = names.worker_id_for_task(TASK)


class FakeOwnership:
    """Just enough DynamoDB for the reaper: a filtered scan and a conditional delete."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = {r["ownerKey"]["S"]: r for r in rows}

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        wanted = kwargs["ExpressionAttributeValues"][":w"]["S"]
        return {"Items": [r for r in self.rows.values() if r["workerId"]["S"] == wanted]}

    def delete_item(self, **kwargs: Any) -> None:
        key = kwargs["Key"]["ownerKey"]["S"]
        if self.rows[key]["workerId"]["S"] != kwargs["ExpressionAttributeValues"][":w"]["S"]:
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": ""}}, "DeleteItem")
        del self.rows[key]


class FakeStepFunctions:
    def __init__(self) -> None:
        self.failed: list[dict[str, Any]] = []

    def send_task_failure(self, **kwargs: Any) -> None:
        self.failed.append(kwargs)


def row(key: str, worker: str, token: str | None = None) -> dict[str, Any]:
    item = {"ownerKey": {"S": key}, "workerId": {"S": worker}}
    if token:
        item["currentToken"] = {"S": token}
    return item


def test_a_stopped_worker_loses_its_pairs_and_its_running_command_fails_at_once() -> None:
    ddb = FakeOwnership([row("bakery#alice", DEAD, "tok-1"), row("florist#bob", "task-alive")])
    sfn = FakeStepFunctions()
    assert reap_stopped_task(ddb, sfn, "ownership", TASK, reason="OutOfMemoryError") == ["bakery#alice"]
    assert list(ddb.rows) == ["florist#bob"]
    (failure,) = sfn.failed
    assert failure["taskToken"] == "tok-1" and failure["error"] == "WorkerStoppedError"
    assert "OutOfMemoryError" in failure["cause"]


def test_a_worker_that_released_everything_leaves_nothing_to_reap() -> None:
    ddb, sfn = FakeOwnership([row("florist#bob", "task-alive", "tok-2")]), FakeStepFunctions()
    assert reap_stopped_task(ddb, sfn, "ownership", TASK) == []
    assert sfn.failed == [] and list(ddb.rows) == ["florist#bob"]


def test_worker_ids_are_task_ids() -> None:
    assert DEAD == "task-0123456789abcdef0123456789abcdef"
