"""One contract per store, run against the in-memory fake and against DynamoDB (moto, in process): code that
is unit-tested over a fake behaves the same on the real table."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import example_workflow_substitutions
from workflows import names
from workflows.adapters.eventlog import EventLog, EventStore, InMemoryEventLog
from workflows.adapters.stores import messages as messages_module
from workflows.adapters.stores.messages import Decision, DynamoMessages, InMemoryMessages, MessagesStore, ThreadLink
from workflows.adapters.stores.ownership import (
    LEASE_SECONDS,
    OWNER_KEY_FORMAT,
    DynamoOwnership,
    InMemoryOwnership,
    OwnershipRow,
    OwnershipStore,
    owner_key,
)
from workflows.adapters.stores.projects import DynamoProjects, InMemoryProjects, ProjectsStore
from workflows.adapters.stores.spending import DynamoSpending, InMemorySpending, MonthSpending, SpendingStore, month_of
from workflows.adapters.stores.threads import DynamoThreads, InMemoryThreads, ThreadsStore, project_of
from workflows.local.stack import create_table
from workflows.models import ExecutionInput, IntakeOutcome, ReplyEnvelope
from workflows.projects import make_project

AT = "2026-12-04T10:00:00.000Z"
THREAD = "abcdefgh"
OTHER_THREAD = "bcdefghj"


@pytest.fixture(scope="module")
def dynamodb(in_process_aws: None) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    for spec in names.TABLES:
        create_table(client, spec)
    return client


@pytest.fixture
def fresh(dynamodb: Any) -> Iterator[Any]:
    """Empty tables for every test (moto's tables live for the module)."""
    yield dynamodb
    for spec in names.TABLES:
        keys = [spec.partition_key.name] + ([spec.sort_key.name] if spec.sort_key else [])
        for item in dynamodb.scan(TableName=spec.local_name).get("Items", []):
            dynamodb.delete_item(TableName=spec.local_name, Key={k: item[k] for k in keys})


@pytest.fixture(params=["in-memory", "dynamodb"])
def messages(request: pytest.FixtureRequest) -> MessagesStore:
    if request.param == "in-memory":
        return InMemoryMessages()
    return DynamoMessages(request.getfixturevalue("fresh"), names.MESSAGES_TABLE.local_name)


@pytest.fixture(params=["in-memory", "dynamodb"])
def threads(request: pytest.FixtureRequest) -> ThreadsStore:
    if request.param == "in-memory":
        return InMemoryThreads()
    return DynamoThreads(request.getfixturevalue("fresh"), names.THREADS_TABLE.local_name)


@pytest.fixture(params=["in-memory", "dynamodb"])
def projects(request: pytest.FixtureRequest) -> ProjectsStore:
    if request.param == "in-memory":
        return InMemoryProjects()
    return DynamoProjects(request.getfixturevalue("fresh"), names.PROJECTS_TABLE.local_name)


# --- messages ---------------------------------------------------------------------------------------------


def _input() -> ExecutionInput:
    envelope = ReplyEnvelope(
        fromAddress="site@mail.example",
        to="alice@example.com",
        replyTo="site+abcdefgh@mail.example",
        subject="Re: x",
        inReplyTo="<a@example.com>",
        references="<a@example.com>",
    )
    return ExecutionInput(
        messageId="ses-1",
        threadId=THREAD,
        projectId="site",
        userId="alice-123456",
        sender="alice@example.com",
        subject="Re: x",
        newThread=True,
        branch="thread-abcdefgh",
        messageKey="messages/site/abcdefgh/ses-1.json",
        reply=envelope,
    )


def test_a_decision_is_kept_whole(messages: MessagesStore) -> None:
    assert messages.decision("ses-1") is None
    accepted = Decision(accepted=True, executionName="abcdefgh-ses-1", input=_input())
    messages.remember_decision("ses-1", accepted)
    assert messages.decision("ses-1") == accepted
    rejected = Decision(
        accepted=False, outcome=IntakeOutcome(accepted=False, messageId="ses-2", rejected="spam", status="REJECTED")
    )
    messages.remember_decision("ses-2", rejected)
    assert messages.decision("ses-2") == rejected and messages.decision("ses-1") == accepted


def test_a_message_id_leads_to_its_first_thread_only(messages: MessagesStore) -> None:
    assert messages.thread_of("<a@example.com>") is None
    first = ThreadLink(threadId=THREAD, projectId="site")
    assert messages.link_message_id("<a@example.com>", first)
    assert not messages.link_message_id("<a@example.com>", ThreadLink(threadId=OTHER_THREAD, projectId="evil"))
    assert not messages.link_message_id("<a@example.com>", first)  # the same link again: already there
    assert messages.thread_of("<a@example.com>") == first


def test_a_notice_is_claimed_once_per_delivery(messages: MessagesStore) -> None:
    assert messages.claim_notice("ses-1", "sender-not-allowed")
    assert not messages.claim_notice("ses-1", "sender-not-allowed")
    assert messages.claim_notice("ses-2", "sender-not-allowed")


def test_the_notice_budget_is_per_kind_sender_and_day(messages: MessagesStore) -> None:
    taken = [messages.take_notice_budget("refusal", "x@example.com", "2026-12-04", 2) for _ in range(3)]
    assert taken == [True, True, False]
    assert messages.take_notice_budget("problem", "x@example.com", "2026-12-04", 2)
    assert messages.take_notice_budget("refusal", "y@example.com", "2026-12-04", 2)
    assert messages.take_notice_budget("refusal", "x@example.com", "2026-12-05", 2)


def test_notice_claims_and_decisions_do_not_collide(messages: MessagesStore) -> None:
    messages.remember_decision("ses-1", Decision(accepted=True, executionName="n", input=_input()))
    assert messages.claim_notice("ses-1", "too-large")
    assert messages.decision("ses-1") is not None


# --- threads ----------------------------------------------------------------------------------------------


def test_a_thread_id_is_claimed_by_one_delivery(threads: ThreadsStore) -> None:
    assert threads.get(THREAD) is None and project_of(threads, THREAD) is None
    assert threads.claim(THREAD, "site", "ses-1", AT)
    assert threads.claim(THREAD, "site", "ses-1", AT)  # a redelivery of the same mail: still its own
    assert not threads.claim(THREAD, "site", "ses-2", AT)
    assert not threads.claim(THREAD, "other", "ses-1", AT)
    row = threads.get(THREAD)
    assert row is not None and (row.projectId, row.branch, row.sesId, row.createdAt) == (
        "site",
        "thread-abcdefgh",
        "ses-1",
        AT,
    )
    assert project_of(threads, THREAD) == "site"


def test_threads_are_listed_oldest_first(threads: ThreadsStore) -> None:
    threads.claim(OTHER_THREAD, "site", "ses-2", "2026-12-04T11:00:00.000Z")
    threads.claim(THREAD, "site", "ses-1", AT)
    assert [row.threadId for row in threads.all()] == [THREAD, OTHER_THREAD]


def test_a_claim_retried_after_the_workflow_resolved_the_thread_keeps_what_it_added(fresh: Any) -> None:
    store = DynamoThreads(fresh, names.THREADS_TABLE.local_name)
    assert store.claim(THREAD, "site", "ses-1", AT)
    fresh.update_item(  # what the workflow's "Resolve thread" state adds
        TableName=names.THREADS_TABLE.local_name,
        Key={"threadId": {"S": THREAD}},
        UpdateExpression="SET userId = :u, subject = :s, lastMessageId = :m",
        ExpressionAttributeValues={":u": {"S": "alice-1"}, ":s": {"S": "Hi"}, ":m": {"S": "ses-1"}},
    )
    assert store.claim(THREAD, "site", "ses-1", "2026-12-05T00:00:00.000Z")
    row = store.get(THREAD)
    assert row is not None and (row.userId, row.subject, row.createdAt) == ("alice-1", "Hi", AT)


# --- projects ---------------------------------------------------------------------------------------------


def test_a_project_round_trips(projects: ProjectsStore) -> None:
    assert projects.get("site") is None
    project = make_project("site", "/repos/site.git", ["alice@example.com"], build_command="npm run build")
    projects.save(project)
    assert projects.get("site") == project
    projects.save(project.model_copy(update={"outputDir": "public"}))
    saved = projects.get("site")
    assert saved is not None and saved.outputDir == "public"


# --- no key spelled twice -------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = [
    messages_module.DECISION_PREFIX,
    messages_module.MESSAGE_ID_PREFIX,
    messages_module.NOTICE_CLAIM_PREFIX,
    messages_module.REPLY_CLAIM_PREFIX,
    messages_module.NOTICE_BUDGET_PREFIX,
    "thread#",  # the old claim rows: threads are claimed in the threads table now
]


def test_the_messages_key_prefixes_are_spelled_only_in_their_module() -> None:
    pattern = re.compile("|".join(re.escape(f"{quote}{p}") for p in PREFIXES for quote in "'\""))
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("workflows", "lambdas", "container", "cdk", "asl")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".json"}
        and path != ROOT / "workflows/adapters/stores/messages.py"
        and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_workflow_gets_the_prefixes_it_writes_from_the_module() -> None:
    asl = (names.ASL_DIR / names.MESSAGE_WORKFLOW.asl_file).read_text()
    for placeholder in messages_module.ASL_SUBSTITUTIONS:
        assert f"'${{{placeholder}}}{{}}'" in asl, placeholder
    subs = example_workflow_substitutions()
    definition = names.substitute(asl, subs)
    assert f"'{messages_module.message_id_key('')}{{}}'" in definition
    assert f"'{messages_module.reply_claim_key('')}{{}}'" in definition


# --- events -----------------------------------------------------------------------------------------------


@pytest.fixture(params=["in-memory", "dynamodb"])
def events(request: pytest.FixtureRequest) -> EventStore:
    if request.param == "in-memory":
        return InMemoryEventLog()
    return EventLog(request.getfixturevalue("fresh"), names.EVENTS_TABLE.local_name)


def test_an_event_is_appended_once_and_read_in_order(events: EventStore) -> None:
    first = events.append(THREAD, "m1#MessageReceived", "MessageReceived", {"n": 1, "nested": {"b": [1, 2]}})
    assert first is not None and first.data == {"n": 1, "nested": {"b": [1, 2]}}
    assert events.append(THREAD, "m1#MessageReceived", "MessageReceived", {"n": 2}) is None
    time.sleep(0.002)  # order is by time first (within one millisecond: by writer, then id)
    events.append(THREAD, "m1#CommandSucceeded", "CommandSucceeded", {"n": 3}, execution="exec-1")
    events.append(OTHER_THREAD, "m2#MessageReceived", "MessageReceived", {"n": 4})
    read = events.read(THREAD)
    assert [(e.eventId, e.data["n"]) for e in read] == [("m1#MessageReceived", 1), ("m1#CommandSucceeded", 3)]
    assert [e.order for e in read] == sorted(e.order for e in read)
    assert read[1].execution == "exec-1" and read[1].order.split("#")[1] == "exec-1"
    assert events.read("nobody") == []


# --- ownership --------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["in-memory", "dynamodb"])
def owned(request: pytest.FixtureRequest) -> tuple[OwnershipStore, Clock]:
    clock = Clock()
    if request.param == "in-memory":
        return InMemoryOwnership(clock=clock), clock
    return DynamoOwnership(request.getfixturevalue("fresh"), names.OWNERSHIP_TABLE.local_name, clock=clock), clock


def test_a_pair_has_one_live_owner(owned: tuple[OwnershipStore, Clock]) -> None:
    store, clock = owned
    assert store.claim("bakery", "alice", "w1", "https://q/1") is None
    assert store.claim("bakery", "alice", "w1", "https://q/1") is None  # claiming again: still ours
    other = store.claim("bakery", "alice", "w2", "https://q/2")
    assert other is not None and (other.workerId, other.queueUrl) == ("w1", "https://q/1")
    assert store.claim("bakery", "bob", "w2", "https://q/3") is None  # another pair
    row = store.get("bakery", "alice")
    assert row is not None and row.ownerKey == "bakery#alice" and row.expiresAt == int(clock.now) + LEASE_SECONDS
    clock.now += LEASE_SECONDS + 1  # the lease ran out: anyone may take the pair over
    assert store.claim("bakery", "alice", "w2", "https://q/2") is None
    assert not store.renew("bakery", "alice", "w1")


def test_only_the_owner_renews_notes_and_releases(owned: tuple[OwnershipStore, Clock]) -> None:
    store, clock = owned
    store.claim("bakery", "alice", "w1", "https://q/1")
    clock.now += 60
    assert store.renew("bakery", "alice", "w1") and not store.renew("bakery", "alice", "w2")
    assert (store.get("bakery", "alice") or OwnershipRow(ownerKey="")).expiresAt == int(clock.now) + LEASE_SECONDS
    assert store.note_running("bakery", "alice", "w1", "token-1", "exec-1")
    assert not store.note_running("bakery", "alice", "w2", "token-2", "exec-2")
    assert [(r.ownerKey, r.currentToken, r.currentExecution) for r in store.held_by("w1")] == [
        ("bakery#alice", "token-1", "exec-1")
    ]
    assert store.clear_running("bakery", "alice", "w1")
    assert [r.currentToken for r in store.held_by("w1")] == [""]
    assert store.held_by("w2") == []
    assert not store.release(owner_key("bakery", "alice"), "w2")
    assert store.release(owner_key("bakery", "alice"), "w1")
    assert store.get("bakery", "alice") is None and not store.release(owner_key("bakery", "alice"), "w1")


def test_the_workflow_builds_owner_keys_as_the_store_does() -> None:
    definition = json.loads((names.ASL_DIR / names.MESSAGE_WORKFLOW.asl_file).read_text())
    built = [
        key["ownerKey"]["S.$"]
        for state in definition["States"].values()
        for key in [state.get("Parameters", {}).get("Key", {})]
        if "ownerKey" in key
    ]
    assert built and set(built) == {f"States.Format('{OWNER_KEY_FORMAT}', $.projectId, $.userId)"}
    assert owner_key("bakery", "alice") == "bakery#alice"


# --- spending ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["in-memory", "dynamodb"])
def spending(request: pytest.FixtureRequest) -> SpendingStore:
    if request.param == "in-memory":
        return InMemorySpending()
    return DynamoSpending(request.getfixturevalue("fresh"), names.SPENDING_TABLE.local_name)


def test_a_months_agent_runs_add_up_per_project(spending: SpendingStore) -> None:
    assert spending.get("bakery", "2026-12") == MonthSpending(projectId="bakery", month="2026-12")
    spending.charge("bakery", "2026-12", 0.0123)
    spending.charge("bakery", "2026-12", 1.5)
    spending.charge("bakery", "2026-12", 0.0)  # a run that cost nothing is still a run
    spending.charge("florist", "2026-12", 9.0)
    spending.charge("bakery", "2027-01", 2.0)
    month = spending.get("bakery", "2026-12")
    assert (month.spentUsd, month.runs, month.extraUsd) == (1.5123, 3, 0.0)
    assert month.left(2.0) == pytest.approx(0.4877) and month.left(1.0) == 0.0


def test_continue_allows_more_once_per_message(spending: SpendingStore) -> None:
    spending.charge("bakery", "2026-12", 5.0)
    assert spending.allow_more("bakery", "2026-12", 2.5, "msg-1")
    assert not spending.allow_more("bakery", "2026-12", 2.5, "msg-1")  # the same CONTINUE, retried
    assert spending.allow_more("bakery", "2026-12", 2.5, "msg-2")
    month = spending.get("bakery", "2026-12")
    assert month.extraUsd == 5.0 and month.allowance(5.0) == 10.0 and month.left(5.0) == 5.0
    assert spending.get("bakery", "2027-01").extraUsd == 0.0  # a new month starts from the budget alone


def test_the_budget_month_is_the_utc_calendar_month() -> None:
    late = datetime(2026, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # already January in UTC
    assert month_of(late) == "2027-01" and month_of(datetime(2026, 12, 1, tzinfo=UTC)) == "2026-12"
