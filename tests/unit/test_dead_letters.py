from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from workflows.dead_letters import fail_waiting_execution, redrive_input, redrive_name

ITEM = {
    "taskToken": "tok-1",
    "command": {
        "messageId": "m1",
        "threadId": "ab3k9x2m",
        "projectId": "bakery",
        "userId": "alice-1a2b3c",
        "branch": "thread-ab3k9x2m",
        "messageKey": "messages/x.json",
        "executionName": "ab3k9x2m-m1",
    },
}


class FakeStepFunctions:
    def __init__(self, error: str | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def send_task_failure(self, **kwargs: Any) -> None:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, "SendTaskFailure")
        self.calls.append(kwargs)


def test_a_dead_lettered_work_item_fails_its_token_with_a_named_error() -> None:
    sfn = FakeStepFunctions()
    assert fail_waiting_execution(sfn, json.dumps(ITEM), receive_count=3)
    (call,) = sfn.calls
    assert call["taskToken"] == "tok-1" and call["error"] == "WorkDeadLetteredError"
    assert "ab3k9x2m" in call["cause"] and "3 deliveries" in call["cause"]


def test_garbage_and_expired_tokens_are_not_errors() -> None:
    assert not fail_waiting_execution(FakeStepFunctions(), "not json")
    assert not fail_waiting_execution(FakeStepFunctions("TaskTimedOut"), json.dumps(ITEM))
    with pytest.raises(ClientError):
        fail_waiting_execution(FakeStepFunctions("ThrottlingException"), json.dumps(ITEM))


def test_redrive_names_and_inputs_count_up() -> None:
    assert redrive_name("ab3k9x2m-m1", 1) == "ab3k9x2m-m1-r1"
    assert redrive_name("ab3k9x2m-m1-r1", 2) == "ab3k9x2m-m1-r2"
    assert len(redrive_name("x" * 80, 12)) == 80
    original = {
        "messageId": "m1",
        "threadId": "ab3k9x2m",
        "projectId": "bakery",
        "userId": "alice-1a2b3c",
        "sender": "alice@example.com",
        "subject": "Re: x",
        "newThread": True,
        "branch": "thread-ab3k9x2m",
        "messageKey": "messages/x.json",
        "reply": {
            "fromAddress": "bakery@d",
            "to": "alice@example.com",
            "replyTo": "bakery+ab3k9x2m@d",
            "subject": "Re: x",
            "inReplyTo": "<a@b>",
            "references": "<a@b>",
        },
    }
    replay, name = redrive_input({"execution": "ab3k9x2m-m1", "input": json.dumps(original)})
    assert replay.redrive == 1 and name == "ab3k9x2m-m1-r1" and replay.threadId == "ab3k9x2m"


@dataclass
class Context:
    function_name: str = "dead-letters"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:dead-letters"
    aws_request_id: str = "req-1"


def test_the_handler_fails_every_record_and_reports_no_batch_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdas.dead_letter import handler as module

    sfn = FakeStepFunctions()
    monkeypatch.setattr(module, "client", lambda service: sfn)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "WebOrdinary")
    event = {"Records": [{"messageId": "q1", "body": json.dumps(ITEM), "attributes": {"ApproximateReceiveCount": "3"}}]}
    assert module.handler(event, Context()) == {"batchItemFailures": []}
    assert [c["taskToken"] for c in sfn.calls] == ["tok-1"]
