from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from workflows.adapters.eventlog import order_key
from workflows.events import EVENT_DATA, EventType, StoredEvent, UnknownEventTypeError, event_data, fold, read_order

THREAD = {"projectId": "bakery", "userId": "alice-1", "branch": "thread-ab3k9x2m"}


def received(message: str = "m1") -> dict[str, Any]:
    facts = {"sender": "alice@example.com", "subject": "Website", "messageKey": f"messages/{message}.json"}
    return {"messageId": message, **facts, "newThread": message == "m1", "redrive": 0, "thread": THREAD}


def succeeded(commit: str, preview: str) -> dict[str, Any]:
    return {"commit": commit, "branch": THREAD["branch"], "filesChanged": ["index.html"], "previewUrl": preview,
            "summary": "Done."}  # fmt: skip


def ev(seq: int, type_: str, data: dict | None = None, message: str = "m1") -> StoredEvent:
    at = f"2026-01-01T00:00:{seq:02d}.000Z"
    return StoredEvent(
        stream="ab3k9x2m",
        eventId=f"{message}#{type_}",
        order=order_key(at, f"ab3k9x2m-{message}", f"Record {type_}"),
        type=type_,
        at=at,
        execution="x",
        data=data or {},
    )


def test_fold_builds_the_thread_from_its_events_in_their_order() -> None:
    events = [
        ev(2, "MessageReceived", received()),
        ev(4, "CommandDispatched", {"workerId": "w1", "queueUrl": "q", "claimed": True, "via": "warm"}),
        ev(6, "CommandSucceeded", succeeded("c1", "http://p/1")),
        ev(7, "ReplySent", {"sesMessageId": "s1", "replyMessageId": "<s1@email.amazonses.com>"}),
    ]
    state = fold("ab3k9x2m", reversed(events))
    assert (state.projectId, state.userId, state.branch) == ("bakery", "alice-1", "thread-ab3k9x2m")
    assert state.lastCommit == "c1" and state.previewUrl == "http://p/1" and state.lastEvent == events[-1].order
    message = state.messages["m1"]
    assert (message.status, message.workerId, message.replied) == ("succeeded", "w1", True)
    assert state.status == "succeeded"


def test_a_failed_message_keeps_the_last_good_preview() -> None:
    events = [
        ev(1, "MessageReceived", received()),
        ev(2, "CommandSucceeded", succeeded("c1", "http://p/1")),
        ev(3, "MessageReceived", received("m2"), message="m2"),
        ev(4, "CommandFailed", {"Error": "BuildFailedError", "Cause": "npm ERR"}, message="m2"),
    ]
    state = fold("ab3k9x2m", events)
    assert state.messages["m2"].status == "failed" and state.messages["m2"].error == "BuildFailedError"
    assert state.lastCommit == "c1" and state.previewUrl == "http://p/1"
    assert list(state.messages) == ["m1", "m2"] and state.status == "failed"


def test_an_event_type_this_code_does_not_know_is_left_out_of_the_fold() -> None:
    first = ev(1, "MessageReceived", received())
    state = fold("ab3k9x2m", [first, ev(2, "SomethingNewer", {"x": 1})])
    assert state.lastEvent == first.order and state.messages["m1"].status == "received"
    with pytest.raises(UnknownEventTypeError):
        event_data(ev(2, "SomethingNewer", {"x": 1}))


def test_every_event_type_has_a_model() -> None:
    assert set(EVENT_DATA) == set(EventType)


def test_a_known_event_whose_data_does_not_fit_its_model_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValidationError):
        fold("ab3k9x2m", [ev(1, "MessageReceived", {"thread": THREAD})])


def test_every_way_a_command_ends_badly_is_folded() -> None:
    cases = {"CommandFailed": "failed", "WorkerLost": "retrying", "CommandRetried": "retrying",
             "CommandInterrupted": "interrupted", "CommandDeadLettered": "dead-lettered"}  # fmt: skip
    for type_, status in cases.items():
        state = fold(
            "ab3k9x2m", [ev(1, "MessageReceived", received()), ev(2, type_, {"Error": "XError", "Cause": "c"})]
        )
        assert state.messages["m1"].status == status, type_
        assert state.messages["m1"].error == ("" if status == "retrying" else "XError"), type_
    redriven = ev(3, "CommandRedriven", {"from": "a", "to": "a-r1", "failure": {"Error": "XError"}})
    assert fold("ab3k9x2m", [redriven]).messages["m1"].status == "redriven"


def test_from_item_parses_what_the_asl_writes() -> None:
    item = {
        "stream": {"S": "ab3k9x2m"},
        "eventId": {"S": "m1#CommandFailed"},
        "order": {"S": "2026-01-01T00:00:00.000Z#ab3k9x2m-m1#Record CommandFailed"},
        "type": {"S": "CommandFailed"},
        "at": {"S": "2026-01-01T00:00:00Z"},
        "execution": {"S": "ab3k9x2m-m1"},
        "data": {"S": '{"Error":"NothingToChangeError","Cause":"not found"}'},
    }
    event = StoredEvent.from_item(item)
    assert event.data["Error"] == "NothingToChangeError"
    assert event.order == "2026-01-01T00:00:00.000Z#ab3k9x2m-m1#Record CommandFailed"


def test_the_order_breaks_ties_of_time_by_execution_and_state() -> None:
    at = "2026-01-01T00:00:00.000Z"
    a = StoredEvent(stream="s", eventId="m1#A", order=order_key(at, "s-m1", "A"), type="A", at=at)
    b = StoredEvent(stream="s", eventId="m2#B", order=order_key(at, "s-m2", "B"), type="B", at=at)
    assert sorted([b, a], key=read_order) == [a, b]


def test_an_event_recorded_before_the_order_key_sorts_by_its_time() -> None:
    old = StoredEvent(stream="s", eventId="m1#A", type="A", at="2026-01-01T00:00:01.000Z")
    new = StoredEvent(
        stream="s", eventId="m1#B", order=order_key("2026-01-01T00:00:02.000Z", "s-m1", "B"), type="B", at=""
    )
    assert sorted([new, old], key=read_order) == [old, new]


def test_the_fold_adds_up_what_commands_cost_and_describe_says_it_in_words() -> None:
    from workflows.events import StoredEvent, describe, fold

    def succeeded(message: str, cost: float, ms: int) -> StoredEvent:
        data = {
            "commit": "3f2a9c41d0b7e6a5f4c3" * 2,
            "branch": "thread-abcdefgh",
            "filesChanged": ["index.html"],
            "previewUrl": "",
            "summary": "Done.",
            "timings": {"totalMs": ms},
            "agent": {"sessionId": "s-1", "costUsd": cost, "turns": 4, "progress": ["editing index.html"]},
        }
        return StoredEvent(
            stream="abcdefgh", eventId=f"{message}#CommandSucceeded#0.1.0", order=f"2026-01-01T00:00:0{ms % 10}Z",
            type="CommandSucceeded", at="2026-01-01T00:00:00Z", data=data,
        )  # fmt: skip

    state = fold("abcdefgh", [succeeded("m-1", 0.25, 1201), succeeded("m-2", 0.5, 2302)])
    assert state.costUsd == 0.75 and state.wallMs == 3503 and state.agentSessionId == "s-1"
    assert state.messages["m-2"].costUsd == 0.5 and state.messages["m-2"].turns == 4
    line = describe(succeeded("m-1", 0.25, 1201))
    assert line == "changed, commit 3f2a9c4, 1.2 s, $0.2500, 4 turns, editing index.html"
