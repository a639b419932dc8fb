"""The worker's scheduler, decision by decision: no threads, no AWS (container/worker/scheduler.py)."""

from __future__ import annotations

from container.worker.cancel import Interruption
from container.worker.scheduler import LEASE_LOST, REMEMBERED_MESSAGES, TOKEN_EXPIRED, Arrival, Scheduler
from tests.gitrepos import message_and_command
from workflows.models import InterruptionDetail, WorkItem

T1, T2 = "ab3k9x2m", "cd5h7j8k"


def work(message_id: str, thread: str = T1, *, resume: bool = False) -> WorkItem:
    _, command = message_and_command("Change the phone number", message_id, thread)
    return WorkItem(taskToken=f"token-{message_id}", command=command.model_copy(update={"resume": resume}))


def detail(by: str, *, same_thread: bool = True, stop: bool = False) -> InterruptionDetail:
    return InterruptionDetail(
        interruptedBy=by, byThread=T1, sameThread=same_thread, stop=stop, resume=not same_thread, text="stopped"
    )


def running(message_id: str = "m-1", thread: str = T1) -> tuple[Scheduler, WorkItem]:
    scheduler = Scheduler()
    first = work(message_id, thread)
    scheduler.start(first)
    return scheduler, first


# --- a newer message -------------------------------------------------------------------------------------


def test_a_newer_instruction_interrupts_the_running_command_and_runs_next() -> None:
    scheduler, _ = running()
    newer = work("m-2")

    arrival = scheduler.arrived(newer, None)

    assert arrival == Arrival("urgent", Interruption(by_message="m-2", by_thread=T1))
    scheduler.finish()
    assert scheduler.next() is newer


def test_an_instruction_of_another_thread_interrupts_too() -> None:
    scheduler, _ = running()
    arrival = scheduler.arrived(work("m-2", T2), None)
    assert arrival.interrupt == Interruption(by_message="m-2", by_thread=T2)


def test_stop_interrupts_and_says_so() -> None:
    scheduler, _ = running()
    arrival = scheduler.arrived(work("m-2"), "stop")
    assert arrival == Arrival("urgent", Interruption(by_message="m-2", by_thread=T1, stop=True))


def test_publish_undo_and_continue_wait_for_the_running_change() -> None:
    for said in ("publish", "undo", "continue"):
        scheduler, _ = running()
        assert scheduler.arrived(work("m-2"), said) == Arrival("later", None)  # type: ignore[arg-type]


def test_a_resumed_command_waits_its_turn_instead_of_interrupting() -> None:
    scheduler, _ = running()
    assert scheduler.arrived(work("m-0", T2, resume=True), None) == Arrival("later", None)


def test_with_nothing_running_a_newer_message_interrupts_nothing() -> None:
    scheduler = Scheduler()
    assert scheduler.arrived(work("m-1"), None) == Arrival("urgent", None)
    assert scheduler.arrived(work("m-2"), "stop") == Arrival("urgent", None)


# --- what runs next --------------------------------------------------------------------------------------


def test_interrupting_messages_run_first_in_arrival_order_then_those_waiting() -> None:
    scheduler, _ = running()
    resumed, publish = work("m-0", T2, resume=True), work("m-p")
    newer, newest = work("m-2"), work("m-3")
    scheduler.arrived(resumed, None)
    scheduler.arrived(newer, None)
    scheduler.arrived(publish, "publish")
    scheduler.arrived(newest, None)
    scheduler.finish()

    order = []
    while (next_work := scheduler.next()) is not None:
        order.append(next_work)
    assert order == [newer, newest, resumed, publish]


def test_the_same_queue_message_is_taken_once_and_only_the_latest_are_remembered() -> None:
    scheduler = Scheduler()
    assert scheduler.first_delivery("sqs-1")
    assert not scheduler.first_delivery("sqs-1")
    for n in range(REMEMBERED_MESSAGES):
        scheduler.first_delivery(f"other-{n}")
    assert scheduler.first_delivery("sqs-1")  # long forgotten: bounded memory


def test_every_held_token_is_listed_for_the_heartbeat() -> None:
    scheduler, first = running()
    newer, publish = work("m-2"), work("m-p")
    scheduler.arrived(newer, None)
    scheduler.arrived(publish, "publish")
    assert scheduler.held() == [first, newer, publish]
    scheduler.finish()
    assert scheduler.held() == [newer, publish]


# --- the workflow stops waiting ---------------------------------------------------------------------------


def test_a_running_command_whose_execution_gave_up_is_abandoned() -> None:
    scheduler, first = running()
    assert scheduler.forget(first) == Interruption(by_message=TOKEN_EXPIRED, by_thread="", abandon=True)


def test_a_waiting_command_whose_execution_gave_up_is_dropped_quietly() -> None:
    scheduler, _ = running()
    newer = work("m-2")
    scheduler.arrived(newer, None)
    assert scheduler.forget(newer) is None
    scheduler.finish()
    assert scheduler.next() is None


def test_losing_the_lease_abandons_the_command_and_stopping_hands_back_what_waits() -> None:
    assert Scheduler.lease_lost() == Interruption(by_message=LEASE_LOST, by_thread="", abandon=True)
    scheduler, _ = running()
    waiting = [work("m-2"), work("m-p")]
    scheduler.arrived(waiting[0], None)
    scheduler.arrived(waiting[1], "undo")
    assert scheduler.drain() == waiting and scheduler.next() is None


# --- after an interruption ----------------------------------------------------------------------------------


def test_a_same_thread_instruction_carries_on_what_it_interrupted_and_what_that_carried() -> None:
    scheduler, _ = running("m-1")
    scheduler.interrupted("Make the header blue", "Add a map", detail("m-2"))
    scheduler.finish()

    assert scheduler.start(work("m-2")) == "Make the header blue\nAdd a map"
    assert scheduler.start(work("m-2")) == ""  # carried over once


def test_another_threads_instruction_carries_nothing_over() -> None:
    scheduler, _ = running("m-1")
    scheduler.interrupted("Make the header blue", "", detail("m-2", same_thread=False))
    assert scheduler.start(work("m-2", T2)) == "" and scheduler.take_stopped() is None


def test_stop_remembers_what_it_stopped_for_its_reply_once() -> None:
    scheduler, _ = running("m-1")
    stopped = detail("m-2", stop=True)
    scheduler.interrupted("Make the header blue", "", stopped)

    assert scheduler.start(work("m-2")) == ""
    assert scheduler.take_stopped() == ("Make the header blue", stopped)
    assert scheduler.take_stopped() is None  # a second STOP finds nothing to stop
