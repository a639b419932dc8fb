from __future__ import annotations

from typing import Any

from workflows import names
from workflows.adapters.stores.ownership import InMemoryOwnership
from workflows.reaper import reap_stopped_task

TASK = "arn:aws:ecs:us-east-1:123456789012:task/webordinary-workers/0123456789abcdef0123456789abcdef"
DEAD = names.worker_id_for_task(TASK)


class FakeStepFunctions:
    def __init__(self) -> None:
        self.failed: list[dict[str, Any]] = []

    def send_task_failure(self, **kwargs: Any) -> None:
        self.failed.append(kwargs)


def ownership(*rows: tuple[str, str, str]) -> InMemoryOwnership:
    """(project#user, worker, running command's token) rows, claimed and noted as the workers do."""
    store = InMemoryOwnership()
    for key, worker, token in rows:
        project, user = key.split("#")
        assert store.claim(project, user, worker, f"https://sqs/{project}") is None
        if token:
            assert store.note_running(project, user, worker, token, f"exec-{project}")
    return store


def test_a_stopped_worker_loses_its_pairs_and_its_running_command_fails_at_once() -> None:
    store = ownership(("bakery#alice", DEAD, "tok-1"), ("florist#bob", "task-alive", ""))
    sfn = FakeStepFunctions()
    assert reap_stopped_task(store, sfn, TASK, reason="OutOfMemoryError") == ["bakery#alice"]
    assert list(store.rows) == ["florist#bob"]
    (failure,) = sfn.failed
    assert failure["taskToken"] == "tok-1" and failure["error"] == "WorkerStoppedError"
    assert "OutOfMemoryError" in failure["cause"]


def test_a_worker_that_released_everything_leaves_nothing_to_reap() -> None:
    store, sfn = ownership(("florist#bob", "task-alive", "tok-2")), FakeStepFunctions()
    assert reap_stopped_task(store, sfn, TASK) == []
    assert sfn.failed == [] and list(store.rows) == ["florist#bob"]


def test_worker_ids_are_task_ids() -> None:
    assert DEAD == "task-0123456789abcdef0123456789abcdef"
