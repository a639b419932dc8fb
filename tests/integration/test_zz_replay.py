"""Runs last in the integration session (file name): every thread the suite produced must replay from its
events to the stored thread state, and no execution may come near Step Functions' history limits."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from workflows import names, projects, replies
from workflows.adapters.aws import client
from workflows.event_metrics import tally
from workflows.events import StoredEvent, event_data, fold
from workflows.local import operations
from workflows.local.demo import create_demo_repository, demo_email
from workflows.local.stack import StackInfo

pytestmark = pytest.mark.integration
TERMINAL = {"succeeded", "failed", "interrupted", "dead-lettered"}
MAX_HISTORY_EVENTS = 500
AWS_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z#")


def _ensure_a_thread(info: StackInfo, tmp_path: Path) -> None:
    if operations.list_threads(client("dynamodb")):
        return
    repo = create_demo_repository(tmp_path)
    project = projects.make_project("replay", str(repo), ["owner@example.com"], build_command="python3 build.py")
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)
    outcome = operations.deliver_email(info, demo_email("replay@mail.webordinary.test"))
    assert outcome.executionArn
    operations.wait_for_execution(client("stepfunctions"), outcome.executionArn, 120)


def test_every_thread_replays_to_its_stored_state(info: StackInfo, tmp_path: Path) -> None:
    _ensure_a_thread(info, tmp_path)
    sfn = client("stepfunctions")
    running = {
        e["name"]
        for e in sfn.list_executions(stateMachineArn=info.stateMachineArn, statusFilter="RUNNING")["executions"]
    }
    threads = operations.list_threads(client("dynamodb"))
    assert threads
    for stored in threads:
        if not stored.lastMessageId:
            continue  # an id intake claimed for a mail whose workflow never ran (the intake tests use a no-op one)
        events = operations.thread_events(client("dynamodb"), stored.threadId)
        orders = [e.order for e in events]
        assert orders == sorted(set(orders)), f"{stored.threadId}: not read in strictly increasing order"
        assert all(AWS_TIME.match(o) for o in orders), orders  # AWS's EnteredTime format, from every writer
        assert len({e.eventId for e in events}) == len(events)
        state = fold(stored.threadId, events)
        assert (state.projectId, state.userId, state.branch) == (
            stored.projectId,
            stored.userId,
            stored.branch,
        ), stored.threadId
        for message in state.messages.values():
            if message.execution in running:
                continue
            assert message.status in TERMINAL, (stored.threadId, message)
            assert message.replied, (stored.threadId, message)
        replies = Counter((e.execution, e.eventId.split("#")[0]) for e in events if e.type == "ReplySent")
        assert all(n == 1 for n in replies.values()), replies  # one reply per message and execution


def test_no_execution_comes_near_the_history_limit(info: StackInfo) -> None:
    sfn = client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=info.stateMachineArn, maxResults=1000)["executions"]
    assert executions
    worst = max(
        (len(sfn.get_execution_history(executionArn=e["executionArn"])["events"]), e["name"]) for e in executions
    )
    assert worst[0] <= MAX_HISTORY_EVENTS, worst


def test_every_event_the_suite_recorded_parses_into_its_types_model(
    info: StackInfo, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Every branch the integration suite drove through the real ASL (and every rejection intake recorded) left
    events; each must parse into the model of its type. A type without a model, or data that does not fit,
    fails here: the fold reads events only through these models."""
    _ensure_a_thread(info, tmp_path)
    dynamodb = client("dynamodb")
    items: list[dict] = []
    kwargs: dict = {"TableName": names.EVENTS_TABLE.local_name}
    while True:
        page = dynamodb.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    seen: Counter[str] = Counter()
    for item in items:
        event = StoredEvent.from_item(item)
        event_data(event)  # raises with the type and the field that does not fit
        seen[event.type] += 1
    # The same items as the events table streams them: each counts once, none is unreadable.
    counted = tally({"eventName": "INSERT", "dynamodb": {"NewImage": item}} for item in items)
    assert counted.unreadable == [] and sum(counted.counts.values()) >= len(items)
    # The whole integration suite drives every branch: then each kind of fact was recorded at least once.
    if not any("test_faults.py" in item.nodeid for item in request.session.items):
        return
    assert {"MessageReceived", "MessageRejected", "CommandDispatched", "CommandSucceeded", "CommandFailed",
            "ReplySent", "WorkerLost", "CommandRetried", "CommandInterrupted", "CommandDeadLettered",
            "CommandRedriven"} <= set(seen), seen  # fmt: skip


def test_every_mail_the_suite_sent_is_plain_words(info: StackInfo, tmp_path: Path) -> None:
    """Runs last on the shared stack: every reply and notice any test made it send, read as the owner reads it."""
    _ensure_a_thread(info, tmp_path)
    sent = operations.outbox(info)
    assert sent
    leaking = {
        f"{mail['subject']} ({mail['threadId'] or 'notice'})": found
        for mail in sent
        if (found := replies.leaks(mail["text"]))
    }
    assert leaking == {}, leaking
