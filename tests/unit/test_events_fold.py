from __future__ import annotations

from workflows.events import StoredEvent, fold


def ev(seq: int, type_: str, data: dict | None = None, message: str = "m1") -> StoredEvent:
    return StoredEvent(
        stream="ab3k9x2m",
        eventId=f"{message}#{type_}",
        seq=seq,
        type=type_,
        at=f"t{seq}",
        execution="x",
        data=data or {},
    )


def test_fold_builds_the_thread_from_its_events_in_seq_order() -> None:
    events = [
        ev(1, "MessageReceived"),
        ev(2, "ThreadResolved", {"projectId": "bakery", "userId": "alice-1", "branch": "thread-ab3k9x2m"}),
        ev(3, "WorkerClaimed", {"workerId": "w1"}),
        ev(4, "CommandDispatched"),
        ev(6, "CommandSucceeded", {"commit": "c1", "previewUrl": "http://p/1"}),  # gaps in seq are normal
        ev(7, "ReplySent", {"sesMessageId": "s1"}),
    ]
    state = fold("ab3k9x2m", reversed(events))
    assert (state.projectId, state.userId, state.branch) == ("bakery", "alice-1", "thread-ab3k9x2m")
    assert state.lastCommit == "c1" and state.previewUrl == "http://p/1" and state.lastSeq == 7
    message = state.messages["m1"]
    assert (message.status, message.workerId, message.replied) == ("succeeded", "w1", True)
    assert state.status == "succeeded"


def test_a_failed_message_keeps_the_last_good_preview() -> None:
    events = [
        ev(1, "MessageReceived"),
        ev(2, "CommandSucceeded", {"commit": "c1", "previewUrl": "http://p/1"}),
        ev(3, "MessageReceived", message="m2"),
        ev(4, "CommandFailed", {"Error": "BuildFailedError", "Cause": "npm ERR"}, message="m2"),
    ]
    state = fold("ab3k9x2m", events)
    assert state.messages["m2"].status == "failed" and state.messages["m2"].error == "BuildFailedError"
    assert state.lastCommit == "c1" and state.previewUrl == "http://p/1"
    assert list(state.messages) == ["m1", "m2"] and state.status == "failed"


def test_unknown_event_types_do_not_break_old_streams() -> None:
    state = fold("ab3k9x2m", [ev(1, "MessageReceived"), ev(2, "SomethingNewer", {"x": 1})])
    assert state.lastSeq == 2 and state.messages["m1"].status == "received"


def test_from_item_parses_what_the_asl_writes() -> None:
    item = {
        "stream": {"S": "ab3k9x2m"},
        "eventId": {"S": "m1#CommandFailed"},
        "seq": {"N": "5"},
        "type": {"S": "CommandFailed"},
        "at": {"S": "2026-01-01T00:00:00Z"},
        "execution": {"S": "ab3k9x2m-m1"},
        "data": {"S": '{"Error":"NothingToChangeError","Cause":"not found"}'},
    }
    event = StoredEvent.from_item(item)
    assert event.seq == 5 and event.data["Error"] == "NothingToChangeError"
