"""Answering a task token that may be gone: dropped and said so, never an error; anything else raised."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from workflows.adapters.task_tokens import TOKEN_GONE, TaskTokens
from workflows.errors import BuildFailedError, WorkerInterruptedError
from workflows.models import InterruptionDetail


class FakeStepFunctions:
    """Records each SendTask* call; answers with ``error`` (a Step Functions error code) when one is set."""

    def __init__(self, error: str = "") -> None:
        self.error = error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _call(self, name: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((name, kwargs))
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, name)
        return {}

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("SendTaskSuccess", **kwargs)

    def send_task_failure(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("SendTaskFailure", **kwargs)

    def send_task_heartbeat(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("SendTaskHeartbeat", **kwargs)


def test_an_answer_reaches_a_waiting_execution_with_the_errors_asl_name() -> None:
    sfn = FakeStepFunctions()
    tokens = TaskTokens(sfn)
    assert tokens.succeed("t-1", '{"ok": true}') and tokens.heartbeat("t-1")
    assert tokens.fail("t-1", BuildFailedError("The build failed."))
    assert tokens.fail("t-1", RuntimeError("boom"), cause="plain words")
    assert sfn.calls == [
        ("SendTaskSuccess", {"taskToken": "t-1", "output": '{"ok": true}'}),
        ("SendTaskHeartbeat", {"taskToken": "t-1"}),
        ("SendTaskFailure", {"taskToken": "t-1", "error": "BuildFailedError", "cause": "The build failed."}),
        ("SendTaskFailure", {"taskToken": "t-1", "error": "WorkerCrashedError", "cause": "plain words"}),
    ]


@pytest.mark.parametrize("code", sorted(TOKEN_GONE))
def test_a_token_nobody_waits_for_is_dropped_not_raised(code: str) -> None:
    tokens = TaskTokens(FakeStepFunctions(code))
    assert not tokens.succeed("t-1", "{}")
    assert not tokens.fail("t-1", BuildFailedError("x"))
    assert not tokens.heartbeat("t-1")


def test_any_other_failure_to_answer_is_raised() -> None:
    with pytest.raises(ClientError):
        TaskTokens(FakeStepFunctions("ThrottlingException")).succeed("t-1", "{}")


def test_an_interruption_travels_as_its_detail_and_is_read_back_typed() -> None:
    sfn = FakeStepFunctions()
    exc = WorkerInterruptedError.describe(
        interrupted_by="m-2",
        by_thread="bcdefghj",
        same_thread=False,
        stop=False,
        wip_commit="3f2a9c41d0b7e6a5f4c3b2a1908f7e6d5c4b3a29",
        pushed=True,
        branch="thread-abcdefgh",
    )
    assert exc.detail.resume and exc.detail.text  # another thread's message: this one comes back later
    TaskTokens(sfn).fail("t-1", exc)
    ((_, sent),) = sfn.calls
    assert sent["error"] == "WorkerInterruptedError"
    # The cause is the detail itself: what the ASL's 'Read interruption' parses and the reply reads.
    assert InterruptionDetail.model_validate_json(sent["cause"]) == exc.detail
    assert json.loads(sent["cause"])["resume"] is True
