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

from workflows import names
from workflows.adapters.stores.ownership import OwnershipStore
from workflows.adapters.task_tokens import TaskTokens
from workflows.errors import WorkerStoppedError

log = logging.getLogger("webordinary.reaper")


def reap_stopped_task(ownership: OwnershipStore, stepfunctions: Any, task_arn: str, reason: str = "") -> list[str]:
    """Fail the stopped worker's running command and release its pairs; returns the owner keys released."""
    worker_id = names.worker_id_for_task(task_arn)
    released: list[str] = []
    for row in ownership.held_by(worker_id):
        if row.currentToken:
            error = WorkerStoppedError(f"The worker running this command stopped ({reason or 'task stopped'}).")
            TaskTokens(stepfunctions).fail(row.currentToken, error)
        if not ownership.release(row.ownerKey, worker_id):
            continue  # a live worker took the pair over meanwhile
        released.append(row.ownerKey)
        log.info("released %s held by stopped worker %s", row.ownerKey, worker_id)
    return released
