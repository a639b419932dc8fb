"""Counting facts from the events table's stream: the envelope is AWS's own (powertools' test event in
../shared/data), the images are events as the ASL and the Python writers store them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lambdas.event_metrics import handler as event_metrics_handler
from tests.conftest import SHARED
from workflows.adapters.eventlog import order_key
from workflows.event_metrics import COMMAND_TIMEOUTS, METRIC_BY_EVENT, METRICS, UNREADABLE_EVENTS, tally
from workflows.events import EventType

STREAM_EVENT = json.loads((SHARED / "data" / "aws-events" / "dynamoStreamEvent.json").read_text())
AT = "2026-12-04T21:42:12.123Z"


def image(type_: str, data: dict[str, Any], message: str = "m1") -> dict[str, Any]:
    """An events-table item in DynamoDB's typed JSON, as the ASL's Record states write it."""
    return {
        "stream": {"S": "ab3k9x2m"},
        "eventId": {"S": f"{message}#{type_}#0.1.0"},
        "order": {"S": order_key(AT, f"ab3k9x2m-{message}", f"Record {type_}")},
        "type": {"S": type_},
        "at": {"S": AT},
        "execution": {"S": f"ab3k9x2m-{message}"},
        "data": {"S": json.dumps(data)},
    }


def records(*images: dict[str, Any], name: str = "INSERT") -> list[dict[str, Any]]:
    """AWS's stream records around our images (the shape of the first record of the shared sample)."""
    out = []
    for number, new_image in enumerate(images):
        record = copy.deepcopy(STREAM_EVENT["Records"][0])
        record["eventID"] = str(number)
        record["eventName"] = name
        record["dynamodb"]["NewImage"] = new_image
        record["dynamodb"]["Keys"] = {k: v for k, v in new_image.items() if k in {"stream", "eventId"}}
        record["dynamodb"]["StreamViewType"] = "NEW_IMAGE"
        out.append(record)
    return out


FAILED = {"Error": "BuildFailedError", "Cause": "npm ERR! missing script: build"}
DISPATCHED = {"workerId": "w1", "queueUrl": "https://sqs/q", "claimed": True, "via": "warm"}


def test_every_event_type_has_a_metric_and_every_metric_a_name() -> None:
    assert set(METRIC_BY_EVENT) == set(EventType)
    assert len(set(METRICS)) == len(METRICS)


def test_each_new_event_counts_once_under_its_type() -> None:
    counted = tally(
        records(
            image("CommandDispatched", DISPATCHED),
            image("CommandFailed", FAILED),
            image("CommandFailed", FAILED, message="m2"),
            image("ReplySent", {"sesMessageId": "s", "replyMessageId": "<s@email.amazonses.com>"}),
        )
    )
    assert counted.counts == {"CommandsDispatched": 1, "CommandsFailed": 2, "RepliesSent": 1}
    assert counted.unreadable == []


def test_a_rewritten_event_is_not_counted_again() -> None:
    # The reply transaction rewrites the same item on a retry: DynamoDB streams a MODIFY, never a second INSERT.
    sent = image("ReplySent", {"sesMessageId": "s", "replyMessageId": "<s@email.amazonses.com>"})
    assert tally(records(sent, name="MODIFY")).counts == {}
    assert tally(STREAM_EVENT["Records"][1:]).counts == {}  # the sample's MODIFY and REMOVE records


@pytest.mark.parametrize("error", ["States.Timeout", "States.HeartbeatTimeout"])
def test_a_worker_lost_to_a_timeout_also_counts_as_a_command_timeout(error: str) -> None:
    counted = tally(records(image("WorkerLost", {"Error": error, "Cause": ""})))
    assert counted.counts == {"WorkersLost": 1, COMMAND_TIMEOUTS: 1}
    stopped = tally(records(image("WorkerLost", {"Error": "WorkerStoppedError", "Cause": "exit 137"})))
    assert stopped.counts == {"WorkersLost": 1}


def test_an_item_no_model_reads_is_counted_as_unreadable_and_never_fails_the_batch() -> None:
    counted = tally(
        records(
            image("CommandSucceeded", {"commit": "abc"}),  # known type, data that does not fit
            image("SomethingNewer", {}),  # a type no reader knows
            {"stream": {"S": "ab3k9x2m"}},  # not an event at all
            image("CommandFailed", FAILED),
        )
    )
    assert counted.counts == {"CommandsSucceeded": 1, UNREADABLE_EVENTS: 3, "CommandsFailed": 1}
    assert counted.unreadable == [
        "ab3k9x2m/m1#CommandSucceeded#0.1.0",
        "ab3k9x2m/m1#SomethingNewer#0.1.0",
        "ab3k9x2m/?",
    ]


def test_the_shared_samples_own_items_are_not_events() -> None:
    counted = tally(STREAM_EVENT["Records"])
    assert counted.counts == {UNREADABLE_EVENTS: 1} and counted.unreadable == ["?/?"]


class _Context:
    function_name = "EventMetrics"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:EventMetrics"
    memory_limit_in_mb = 256
    aws_request_id = "req-1"


def test_the_handler_publishes_the_counts_as_emf(capsys: pytest.CaptureFixture[str]) -> None:
    out = event_metrics_handler.handler({"Records": records(image("CommandFailed", FAILED))}, _Context())
    assert out == {"counts": {"CommandsFailed": 1}}
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (metric,) = [m for m in emf if "CommandsFailed" in m]
    assert metric["CommandsFailed"] == [1.0] or metric["CommandsFailed"] == 1.0
    assert metric["service"] == "webordinary-event-metrics"
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "WebOrdinary"
