"""The reaper: when a worker task stops, free what it held at once.

ECS reports every task that stops (EventBridge "ECS Task State Change" on AWS; the local ECS runner here).
A worker that exits normally has already released its pair; one that crashed still owns it, and an execution
may be waiting on its command. The reaper fails that command's task token (the workflow takes its WorkerLost
branch now, not after a heartbeat timeout) and deletes the ownership, only while the dead worker still holds
it, so the next message claims a live worker instead of queueing behind a dead one.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from workflows import names
from workflows.errors import WorkerStoppedError, asl_error_name

log = logging.getLogger("webordinary.reaper")
_TOKEN_GONE = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


def held_by(dynamodb: Any, table: str, worker_id: str) -> list[dict[str, Any]]:
    """Ownership rows of one worker. The table holds one row per active project+user pair (tens to hundreds),
    so a filtered scan is cheaper than an index written on every claim and lease renewal."""
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "workerId = :w",
        "ExpressionAttributeValues": {":w": {"S": worker_id}},
        "ConsistentRead": True,
    }
    while True:
        page = dynamodb.scan(**kwargs)
        rows.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return rows
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def reap_stopped_task(dynamodb: Any, stepfunctions: Any, table: str, task_arn: str, reason: str = "") -> list[str]:
    """Fail the stopped worker's running command and release its pairs; returns the owner keys released."""
    worker_id = names.worker_id_for_task(task_arn)
    released: list[str] = []
    for row in held_by(dynamodb, table, worker_id):
        token = row.get("currentToken", {}).get("S")
        if token:
            error = WorkerStoppedError(f"The worker running this command stopped ({reason or 'task stopped'}).")
            try:
                stepfunctions.send_task_failure(taskToken=token, error=asl_error_name(error), cause=str(error))
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in _TOKEN_GONE:
                    raise
        key = row["ownerKey"]["S"]
        try:
            dynamodb.delete_item(
                TableName=table,
                Key={"ownerKey": {"S": key}},
                ConditionExpression="workerId = :w",
                ExpressionAttributeValues={":w": {"S": worker_id}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            continue  # a live worker took the pair over meanwhile
        released.append(key)
        log.info("released %s held by stopped worker %s", key, worker_id)
    return released
