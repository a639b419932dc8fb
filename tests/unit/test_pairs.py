"""Owning a project+user pair (container/worker/pairs.py): moto's SQS in process, the ownership store's fake."""

from __future__ import annotations

import json
from typing import Any

import pytest

from container.worker.pairs import Pairs
from tests.gitrepos import message_and_command
from workflows import names
from workflows.adapters.aws import client
from workflows.adapters.stores.ownership import InMemoryOwnership
from workflows.models import WorkItem


class RecordedTokens:
    """TaskTokens' interface, recording what each token was answered."""

    def __init__(self) -> None:
        self.failed: dict[str, str] = {}

    def fail(self, token: str, exc: BaseException, cause: str | None = None) -> bool:
        self.failed[token] = type(exc).__name__
        return True


@pytest.fixture
def sqs(in_process_aws: None) -> Any:
    sqs = client("sqs")
    sqs.create_queue(QueueName="work-dlq")
    return sqs


def pairs(sqs: Any, ownership: InMemoryOwnership, worker_id: str, tokens: RecordedTokens | None = None) -> Pairs:
    url = sqs.get_queue_url(QueueName="work-dlq")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Pairs(sqs, ownership, tokens or RecordedTokens(), worker_id, work_dlq_arn=dlq)  # type: ignore[arg-type]


def test_the_first_claim_owns_the_pair_and_later_ones_are_sent_to_its_queue(sqs: Any) -> None:
    ownership = InMemoryOwnership()
    first = pairs(sqs, ownership, "w-1").claim("bakery", "alice")
    second = pairs(sqs, ownership, "w-2").claim("bakery", "alice")

    assert first.claimed and first.workerId == "w-1"
    assert not second.claimed and second.workerId == "w-1" and second.queueUrl == first.queueUrl
    attributes = sqs.get_queue_attributes(QueueUrl=first.queueUrl, AttributeNames=["All"])["Attributes"]
    assert int(json.loads(attributes["RedrivePolicy"])["maxReceiveCount"]) == names.WORK_QUEUE_MAX_RECEIVE_COUNT
    assert attributes["VisibilityTimeout"] == str(names.WORK_QUEUE_VISIBILITY_SECONDS)


def test_a_queue_an_earlier_release_made_differently_is_brought_up_to_date(sqs: Any) -> None:
    name = names.work_queue_name("cafe", "alice")
    sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "5"})

    ready = pairs(sqs, InMemoryOwnership(), "w-1").claim("cafe", "alice")

    attributes = sqs.get_queue_attributes(QueueUrl=ready.queueUrl, AttributeNames=["All"])["Attributes"]
    assert ready.claimed and attributes["VisibilityTimeout"] == str(names.WORK_QUEUE_VISIBILITY_SECONDS)


def test_releasing_hands_back_what_slipped_into_the_queue_and_frees_the_pair(sqs: Any) -> None:
    ownership, tokens = InMemoryOwnership(), RecordedTokens()
    mine = pairs(sqs, ownership, "w-1", tokens)
    ready = mine.claim("florist", "alice")
    _, command = message_and_command("Change the phone number", "m-1", "ab3k9x2m")
    sqs.send_message(QueueUrl=ready.queueUrl, MessageBody=WorkItem(taskToken="t-1", command=command).model_dump_json())
    sqs.send_message(QueueUrl=ready.queueUrl, MessageBody="not a work item")

    mine.release("florist", "alice")

    assert tokens.failed == {"t-1": "WorkerReleasedError"}  # its execution claims a worker again at once
    assert sqs.receive_message(QueueUrl=ready.queueUrl, WaitTimeSeconds=0).get("Messages", []) == []
    assert pairs(sqs, ownership, "w-2").claim("florist", "alice").claimed
    assert not mine.renew("florist", "alice")


def test_the_running_command_is_noted_on_the_ownership_row_and_cleared(sqs: Any) -> None:
    ownership = InMemoryOwnership()
    mine = pairs(sqs, ownership, "w-1")
    mine.claim("grocer", "alice")

    mine.note_running("grocer", "alice", "t-1", "exec-1")
    row = ownership.get("grocer", "alice")
    assert row is not None and (row.currentToken, row.currentExecution) == ("t-1", "exec-1")
    mine.note_running("grocer", "alice", None, "exec-1")
    row = ownership.get("grocer", "alice")
    assert row is not None and not row.currentToken
