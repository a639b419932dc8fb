"""Fault injection on the embedded stack: real ASL, real worker processes, real git. Every way a command can
end is a branch of the workflow; each test breaks something on purpose and checks the event log, the git
branch, the preview and the outbox."""

from __future__ import annotations

import json
import signal
import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import git
import pytest

from workflows import names, projects
from workflows.adapters.aws import client
from workflows.adapters.stores.ownership import DynamoOwnership
from workflows.local import operations
from workflows.local.agents import APPEND_LINE, SLOW_EDIT
from workflows.local.demo import create_demo_repository
from workflows.local.stack import EmbeddedStack, StackInfo

pytestmark = pytest.mark.integration
OWNER = "owner@example.com"


def add_project(
    info: StackInfo, name: str, repo: Path, editor: str = "replace", senders: list[str] | None = None
) -> None:
    project = projects.make_project(
        name, str(repo), senders or [OWNER], editor=editor, build_command="python3 build.py", output_dir="dist"
    )
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)


def mail(to: str, instruction: str, *, thread: str | None = None, sender: str = OWNER) -> tuple[bytes, str]:
    msg = EmailMessage()
    msg["From"] = sender
    local, _, domain = to.partition("@")
    msg["To"] = f"{local}+{thread}@{domain}" if thread else to
    msg["Subject"] = "Site change"
    message_id = make_msgid(domain="example.com")
    msg["Message-ID"] = message_id
    msg.set_content(instruction + "\n")
    return bytes(msg), message_id


def deliver(info: StackInfo, to: str, instruction: str, **kw: Any) -> operations.IntakeOutcome:
    raw, _ = mail(to, instruction, **kw)
    outcome = operations.deliver_email(info, raw, ses_id=f"fault-{time.time_ns()}")
    assert outcome.accepted and outcome.executionArn, outcome
    return outcome


def finish(arn: str, timeout: float = 150) -> dict[str, Any]:
    return operations.wait_for_execution(client("stepfunctions"), arn, timeout=timeout)


def states(arn: str) -> list[str]:
    return [s["state"] for s in operations.trace(client("stepfunctions"), arn)["steps"]]


def events(thread: str) -> list[Any]:
    return operations.thread_events(client("dynamodb"), thread)


def replies(info: StackInfo, thread: str) -> list[dict[str, Any]]:
    return [r for r in operations.outbox(info) if r["threadId"] == thread]


def owner_process(stack: EmbeddedStack, project: str, user: str) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = DynamoOwnership(client("dynamodb"), names.OWNERSHIP_TABLE.local_name).get(project, user)
        if row:
            worker_id = row.workerId
            for worker in stack.workers.values():
                if worker_id == names.worker_id_for_task(worker.task_arn):
                    return worker.process
        time.sleep(0.1)
    raise AssertionError("no owner process found")


def wip_refs(repo: Path, thread: str) -> list[Any]:
    """The refs the remote keeps a thread's dead runs' leftovers on."""
    return [ref for ref in git.Repo(repo).refs if ref.path.startswith(f"refs/webordinary/wip/thread-{thread}/")]


def wait_for(predicate: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def start_slow_command(
    stack: EmbeddedStack, info: StackInfo, tmp_path: Path, project: str, instruction: str, sleep: float
) -> tuple[Path, Any, Any]:
    """A command whose agent is busy for ``sleep`` seconds the first time it runs (at once on a retry):
    returns the bare repository, the intake outcome and the worker process running it."""
    repo = create_demo_repository(tmp_path)
    marker = tmp_path / "slept"
    add_project(info, project, repo, editor=f"command:python3 {SLOW_EDIT} --sleep {sleep} --once-marker {marker}")
    outcome = deliver(info, f"{project}@mail.webordinary.test", instruction)
    wait_for(marker.exists, what="the editor to start")
    time.sleep(0.5)
    return repo, outcome, owner_process(stack, project, projects.user_id_for(OWNER))


def test_worker_killed_mid_edit_is_noticed_retried_and_its_work_kept(
    stack: EmbeddedStack, info: StackInfo, tmp_path: Path
) -> None:
    repo, outcome, victim = start_slow_command(
        stack, info, tmp_path, "killed", 'Please replace "Call us" with "Ring us".', sleep=60
    )
    lost_at = time.monotonic()
    victim.send_signal(signal.SIGKILL)

    described = finish(outcome.executionArn)
    assert described["status"] == "SUCCEEDED", states(outcome.executionArn)
    recovered_in = time.monotonic() - lost_at
    types = [e.type for e in events(outcome.threadId)]
    assert types.count("WorkerLost") == 1 and types[-2:] == ["CommandSucceeded", "ReplySent"]
    assert types.index("WorkerLost") < types.index("CommandSucceeded")
    assert "Release the lost worker" in states(outcome.executionArn)
    lost = next(e for e in events(outcome.threadId) if e.type == "WorkerLost")
    assert lost.data["Error"] == "WorkerStoppedError"  # the reaper saw the task stop; no heartbeat wait
    branch = git.Repo(repo).commit(f"thread-{outcome.threadId}")
    assert b"Ring us" in (branch.tree / "src" / "index.html").data_stream.read()
    # The retry ran the whole instruction again from the pushed state: the agent's note is there once.
    assert (branch.tree / "src" / "notes.txt").data_stream.read().decode().count("working on:") == 1
    # The lost worker's uncommitted partial work was kept aside on a WIP ref of the remote, not dropped.
    (kept,) = wip_refs(repo, outcome.threadId)
    assert "recovered uncommitted work" in str(kept.commit.message)
    assert kept.commit.hexsha not in {c.hexsha for c in git.Repo(repo).iter_commits(f"thread-{outcome.threadId}")}
    succeeded = next(e for e in events(outcome.threadId) if e.type == "CommandSucceeded")
    assert [k["ref"] for k in succeeded.data["keptAside"]] == [kept.path]
    assert len(replies(info, outcome.threadId)) == 1
    print(f"worker-loss recovery: {recovered_in:.1f} s")


def test_a_non_idempotent_agent_killed_before_the_commit_is_retried_from_the_pushed_branch(
    stack: EmbeddedStack, info: StackInfo, tmp_path: Path
) -> None:
    # Every real agent is like this one: asked to add a line, it adds one more each time it runs. Killed after
    # writing and before the job's commit, its retry must not see the dead run's line.
    repo = create_demo_repository(tmp_path)
    marker = tmp_path / "appended"
    add_project(info, "sundays", repo, editor=f"command:python3 {APPEND_LINE} --sleep 60 --once-marker {marker}")
    outcome = deliver(info, "sundays@mail.webordinary.test", "Please say we are open on Sundays.")
    wait_for(marker.exists, what="the agent to write its line")
    owner_process(stack, "sundays", projects.user_id_for(OWNER)).send_signal(signal.SIGKILL)

    described = finish(outcome.executionArn)
    assert described["status"] == "SUCCEEDED", states(outcome.executionArn)
    types = [e.type for e in events(outcome.threadId)]
    assert types.count("WorkerLost") == 1 and types[-2:] == ["CommandSucceeded", "ReplySent"], types
    # One reply, and it says the change is made.
    (reply,) = replies(info, outcome.threadId)
    assert "Added '<p>Open on Sundays</p>' to src/index.html." in reply["text"].replace("\r\n", "\n")
    # The pushed branch: one commit on main, the line exactly once.
    bare = git.Repo(repo)
    head = bare.commit(f"thread-{outcome.threadId}")
    assert [p.hexsha for p in head.parents] == [bare.commit("main").hexsha]
    assert (head.tree / "src" / "index.html").data_stream.read().decode().count("<p>Open on Sundays</p>") == 1
    # The dead run's line is findable on its own ref, based on main, and not part of the branch.
    (kept,) = wip_refs(repo, outcome.threadId)
    assert (kept.commit.tree / "src" / "index.html").data_stream.read().decode().count("Open on Sundays") == 1
    assert [p.hexsha for p in kept.commit.parents] == [bare.commit("main").hexsha]
    assert kept.commit.hexsha not in {c.hexsha for c in bare.iter_commits(f"thread-{outcome.threadId}")}


def test_worker_frozen_past_its_heartbeat_is_replaced_and_cannot_interfere(
    stack: EmbeddedStack, info: StackInfo, tmp_path: Path
) -> None:
    repo, outcome, frozen = start_slow_command(
        stack, info, tmp_path, "frozen", 'Please replace "Call us" with "Phone us".', sleep=20
    )
    frozen.send_signal(signal.SIGSTOP)
    try:
        described = finish(outcome.executionArn)
    finally:
        frozen.send_signal(signal.SIGCONT)
    assert described["status"] == "SUCCEEDED", states(outcome.executionArn)
    head = git.Repo(repo).commit(f"thread-{outcome.threadId}").hexsha
    time.sleep(4)  # the thawed worker notices it lost its lease and token, and must not push anything
    assert git.Repo(repo).commit(f"thread-{outcome.threadId}").hexsha == head
    assert [e.type for e in events(outcome.threadId)].count("WorkerLost") == 1
    assert len(replies(info, outcome.threadId)) == 1


def test_push_failing_twice_then_succeeding_is_retried_without_a_second_commit(info: StackInfo, tmp_path: Path) -> None:
    repo = create_demo_repository(tmp_path)
    counter = tmp_path / "push-attempts"
    hook = repo / "hooks" / "pre-receive"
    hook.write_text(
        f"#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > {counter}\n"
        '[ "$n" -gt 2 ] || { echo "remote busy, try again" >&2; exit 1; }\n'
    )
    hook.chmod(0o755)
    add_project(info, "flaky", repo)
    outcome = deliver(info, "flaky@mail.webordinary.test", 'replace "Call us" with "Ring us"')
    described = finish(outcome.executionArn)
    assert described["status"] == "SUCCEEDED", states(outcome.executionArn)
    assert counter.read_text().strip() == "3"
    branch = f"thread-{outcome.threadId}"
    commits = list(git.Repo(repo).iter_commits(f"main..{branch}"))
    assert len(commits) == 1  # retried pushes re-published the same commit, never edited twice
    assert json.loads(described["output"])["result"]["commit"] == commits[0].hexsha
    assert len(replies(info, outcome.threadId)) == 1


def test_an_editor_that_fails_every_time_gets_a_plain_reply_and_operators_its_log(
    info: StackInfo, tmp_path: Path
) -> None:
    repo = create_demo_repository(tmp_path)
    add_project(info, "broken", repo, editor="command:echo 'agent: cannot parse the page' >&2; exit 3")
    outcome = deliver(info, "broken@mail.webordinary.test", "Make the header blue")
    described = finish(outcome.executionArn)
    assert described["status"] == "FAILED" and described["error"] == "CommandFailedError"
    evs = events(outcome.threadId)
    assert [e.type for e in evs][-2:] == ["CommandFailed", "ReplySent"]
    assert evs[-2].data["Error"] == "EditorFailedError"
    (reply,) = replies(info, outcome.threadId)
    # The owner reads what happened in words; the raw output stays with the recorded failure, for operators.
    assert "editing tool stopped with a problem" in reply["text"] and "cannot parse the page" not in reply["text"]
    assert "exit status 3" in evs[-2].data["Cause"] and "cannot parse the page" in evs[-2].data["Cause"]
    assert f"thread-{outcome.threadId}" not in [h.name for h in git.Repo(repo).heads]


def test_a_worker_that_dies_every_time_is_dead_lettered_then_redriven(info: StackInfo, tmp_path: Path) -> None:
    repo = create_demo_repository(tmp_path)
    # The editor kills the worker that runs it: every attempt loses its worker.
    add_project(info, "doomed", repo, editor="command:kill -9 $PPID")
    outcome = deliver(info, "doomed@mail.webordinary.test", 'replace "Call us" with "Ring us"')
    described = finish(outcome.executionArn, timeout=240)
    assert described["status"] == "FAILED" and described["error"] == "CommandDeadLetteredError"
    types = [e.type for e in events(outcome.threadId)]
    assert types.count("WorkerLost") == 3 and types[-2:] == ["CommandDeadLettered", "ReplySent"]
    (reply,) = replies(info, outcome.threadId)
    assert "Nothing is lost" in reply["text"]

    add_project(info, "doomed", repo)  # the operator fixes the project's editor, then redrives
    redriven = operations.redrive(info, described["name"])
    assert [r["from"] for r in redriven] == [described["name"]]
    assert redriven[0]["execution"] == described["name"] + "-r1"
    again = finish(redriven[0]["executionArn"])
    assert again["status"] == "SUCCEEDED", states(redriven[0]["executionArn"])
    types = [e.type for e in events(outcome.threadId)]
    assert "CommandRedriven" in types and types[-2:] == ["CommandSucceeded", "ReplySent"]
    assert len(replies(info, outcome.threadId)) == 2  # one outcome per execution: dead-lettered, then done
    assert operations.redrive(info) == []  # nothing left on the dead-letter queue


def test_the_same_message_delivered_five_times_at_once_runs_once(info: StackInfo, tmp_path: Path) -> None:
    repo = create_demo_repository(tmp_path)
    add_project(info, "fivefold", repo)
    raw, _ = mail("fivefold@mail.webordinary.test", 'replace "Call us" with "Ring us"')
    results: list[operations.IntakeOutcome] = []
    threads = [
        threading.Thread(target=lambda: results.append(operations.deliver_email(info, raw, ses_id="ses-five")))
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.executionArn for r in results}) == 1
    described = finish(results[0].executionArn)
    assert described["status"] == "SUCCEEDED"
    assert len(replies(info, results[0].threadId)) == 1
    executions = client("stepfunctions").list_executions(stateMachineArn=info.stateMachineArn)["executions"]
    assert [e["name"] for e in executions].count(described["name"]) == 1


def test_ten_workers_racing_for_one_claim_leave_exactly_one_owner(info: StackInfo) -> None:
    from container.worker.runtime import Worker
    from workflows.settings import Tables, WorkerSettings

    settings = WorkerSettings.from_env(info.worker_env(30, 1) | {"WEBORDINARY_WORKER_ID": "x"})
    workers = [Worker(settings.model_copy(update={"worker_id": f"racer-{i}"}), Tables()) for i in range(10)]
    barrier = threading.Barrier(10)
    answers: list[Any] = []

    def race(worker: Worker) -> None:
        barrier.wait()
        answers.append(worker.claim("race", "alice-000000"))

    threads = [threading.Thread(target=race, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [a for a in answers if a.claimed]
    assert len(winners) == 1
    assert {a.workerId for a in answers} == {winners[0].workerId}  # the losers point at the winner
    assert len({a.queueUrl for a in answers}) == 1


def test_a_burst_of_five_messages_on_one_thread_loses_nothing(info: StackInfo, tmp_path: Path) -> None:
    repo = create_demo_repository(tmp_path)
    add_project(info, "burst", repo, editor=f"command:python3 {SLOW_EDIT} --sleep 4")
    to = "burst@mail.webordinary.test"
    first = deliver(info, to, 'replace "Harbour" with "Harbor"')
    thread = first.threadId
    wait_for(lambda: "CommandDispatched" in [e.type for e in events(thread)], what="the first dispatch")
    time.sleep(1)
    later = []
    for i, (old, new) in enumerate([("bread", "loaves"), ("morning", "day"), ("cake", "tart"), ("Quay", "Pier")]):
        later.append(deliver(info, to, f'replace "{old}" with "{new}"', thread=thread))
        time.sleep(0.6 if i < 3 else 0)
    outcomes = [finish(o.executionArn, timeout=240) for o in [first, *later]]

    statuses = [o["status"] for o in outcomes]
    assert statuses == ["SUCCEEDED"] * 5, [states(o.executionArn) for o in [first, *later]]
    ends = [states(o.executionArn)[-1] for o in [first, *later]]
    assert ends[-1] == "Done" and set(ends[:-1]) <= {"Superseded", "Done"} and "Superseded" in ends
    evs = events(thread)
    for o in [first, *later]:  # every message accounted for: received, one outcome, one reply
        mine = [e.type for e in evs if e.eventId.startswith(o.messageId + "#")]
        assert mine[0] == "MessageReceived" and mine[-1] == "ReplySent"
        assert sum(t in {"CommandSucceeded", "CommandInterrupted", "CommandFailed"} for t in mine) == 1
    assert len(replies(info, thread)) == 5
    bare = git.Repo(repo)
    branch = f"thread-{thread}"
    assert all(len(c.parents) == 1 for c in bare.iter_commits(f"main..{branch}"))  # linear history
    tree = bare.commit(branch).tree
    for blob in tree.traverse():
        if blob.type == "blob":  # type: ignore[union-attr]
            assert b"<<<<<<<" not in blob.data_stream.read()  # type: ignore[union-attr]
    index = (tree / "src" / "index.html").data_stream.read()
    assert b"Harbor" in index and b"loaves" in index and b"day" in index and b"tart" in index


def test_stop_ends_the_running_command_keeps_its_work_and_starts_nothing(info: StackInfo, tmp_path: Path) -> None:
    repo = create_demo_repository(tmp_path)
    add_project(info, "halt", repo, editor=f"command:python3 {SLOW_EDIT} --sleep 30")
    to = "halt@mail.webordinary.test"
    running = deliver(info, to, 'replace "Call us" with "Ring us"')
    wait_for(lambda: "CommandDispatched" in [e.type for e in events(running.threadId)], what="dispatch")
    time.sleep(1.5)
    stop_sent = time.monotonic()
    stop = deliver(info, to, "STOP", thread=running.threadId)
    first, second = finish(running.executionArn), finish(stop.executionArn)
    stopped_in = time.monotonic() - stop_sent
    assert states(running.executionArn)[-1] == "Superseded" and states(stop.executionArn)[-1] == "Stopped"
    assert first["status"] == second["status"] == "SUCCEEDED"
    interrupted = next(e for e in events(running.threadId) if e.type == "CommandInterrupted")
    detail = json.loads(interrupted.data["Cause"])
    assert detail["stop"] and detail["wipCommit"] and detail["pushed"]
    wip = git.Repo(repo).commit(f"thread-{running.threadId}")
    assert wip.hexsha == detail["wipCommit"] and "WIP (interrupted)" in str(wip.message)
    assert b"working on" in (wip.tree / "src" / "notes.txt").data_stream.read()
    texts = [r["text"] for r in replies(info, running.threadId)]
    assert len(texts) == 2 and any("Stopped" in t for t in texts) and any("as you asked" in t for t in texts)
    print(f"STOP to outcome: {stopped_in:.1f} s")


def test_a_newer_message_in_another_thread_pauses_and_then_resumes(info: StackInfo, tmp_path: Path) -> None:
    repo = create_demo_repository(tmp_path)
    add_project(info, "juggle", repo, editor=f"command:python3 {SLOW_EDIT} --sleep 5")
    to = "juggle@mail.webordinary.test"
    older = deliver(info, to, 'replace "Call us" with "Ring us"')
    wait_for(lambda: "CommandDispatched" in [e.type for e in events(older.threadId)], what="dispatch")
    time.sleep(1)
    newer = deliver(info, to, 'replace "Fresh" with "Warm"')  # a new thread, same owner
    assert newer.threadId != older.threadId
    a, b = finish(older.executionArn, timeout=200), finish(newer.executionArn, timeout=200)
    assert a["status"] == b["status"] == "SUCCEEDED"
    assert states(older.executionArn)[-1] == "Done" and "Resume after the newer command" in states(older.executionArn)
    older_types = [e.type for e in events(older.threadId)]
    assert "CommandInterrupted" in older_types and older_types[-2:] == ["CommandSucceeded", "ReplySent"]
    assert len(replies(info, older.threadId)) == 1 and len(replies(info, newer.threadId)) == 1
    bare = git.Repo(repo)
    assert b"Ring us" in (bare.commit(f"thread-{older.threadId}").tree / "src" / "index.html").data_stream.read()
    assert b"Warm" in (bare.commit(f"thread-{newer.threadId}").tree / "src" / "index.html").data_stream.read()
    assert b"Ring us" not in (bare.commit(f"thread-{newer.threadId}").tree / "src" / "index.html").data_stream.read()


def test_transient_dynamodb_write_failures_are_retried_and_recorded_once(
    info: StackInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
    from moto.dynamodb.models import DynamoDBBackend

    repo = create_demo_repository(tmp_path)
    add_project(info, "throttled", repo)
    original = DynamoDBBackend.put_item
    failures = {"left": 4}
    lock = threading.Lock()

    def flaky_put_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        if table_name == names.EVENTS_TABLE.local_name:
            with lock:
                if failures["left"] > 0:
                    failures["left"] -= 1
                    raise DynamodbException(
                        ERROR_TYPE_PREFIX + "ProvisionedThroughputExceededException",
                        "Rate of requests exceeds the limit",
                    )
        return original(self, table_name, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "put_item", flaky_put_item)
    outcome = deliver(info, "throttled@mail.webordinary.test", 'replace "Call us" with "Ring us"')
    described = finish(outcome.executionArn)
    assert described["status"] == "SUCCEEDED", states(outcome.executionArn)
    assert failures["left"] == 0
    types = [e.type for e in events(outcome.threadId)]
    assert len(types) == len(set(types))  # each fact once, despite the retries
    assert types[0] == "MessageReceived" and types[-1] == "ReplySent"
    assert len(replies(info, outcome.threadId)) == 1


def test_a_command_nobody_waits_for_any_more_is_dropped_and_a_redelivery_is_not_run_twice(
    info: StackInfo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A dead worker's long poll hides a command (SQS completes the poll for a closed connection) until the
    execution may have stopped waiting for it; SQS can also deliver one message twice. Neither may edit or push."""
    from container.worker.runtime import Worker
    from workflows.models import Command, WorkItem
    from workflows.settings import Tables, WorkerSettings

    repo = create_demo_repository(tmp_path)
    add_project(info, "stale", repo)
    user = projects.user_id_for(OWNER)
    settings = WorkerSettings.from_env(info.worker_env(2, 1) | {"WEBORDINARY_WORKER_ID": "stale-worker"})
    worker = Worker(settings, Tables())
    ready = worker.claim("stale", user)
    assert ready.claimed
    command = Command(
        messageId="m-stale",
        threadId="st2vwxyz",
        projectId="stale",
        userId=user,
        branch="thread-st2vwxyz",
        messageKey="messages/stale/st2vwxyz/m-stale.json",
        executionName="st2vwxyz-m-stale",
    )
    item = WorkItem(taskToken="token-of-an-execution-that-gave-up", command=command).model_dump_json()
    sqs = client("sqs")
    sqs.send_message(QueueUrl=ready.queueUrl, MessageBody=item)
    swallowed = sqs.receive_message(QueueUrl=ready.queueUrl, WaitTimeSeconds=1)["Messages"]  # the dead poller
    assert len(swallowed) == 1
    # Comes back after the queue's (short) visibility timeout, not after minutes.
    redelivered = sqs.receive_message(QueueUrl=ready.queueUrl, WaitTimeSeconds=names.WORK_QUEUE_VISIBILITY_SECONDS + 2)
    (again,) = redelivered["Messages"]
    assert again["MessageId"] == swallowed[0]["MessageId"]

    with caplog.at_level("INFO", logger="webordinary.worker"):
        assert worker._take(again, ready.queueUrl) is None  # its execution no longer waits: dropped
        assert worker._take(again, ready.queueUrl) is None  # the same SQS message once more: not taken twice
        worker.serve("stale", user, ready.queueUrl)  # nothing left to run; returns when idle, releasing the pair

    said = [r.getMessage() for r in caplog.records]
    assert sum("no longer waits for its command" in m for m in said) == 1
    assert sum("delivered again" in m for m in said) == 1
    assert not any(m.startswith("command m-stale for thread") for m in said)  # never run
    assert "thread-st2vwxyz" not in [h.name for h in git.Repo(repo).heads]
    assert sqs.receive_message(QueueUrl=ready.queueUrl, WaitTimeSeconds=0).get("Messages", []) == []


def test_a_work_queue_made_by_an_earlier_release_is_brought_up_to_date(info: StackInfo) -> None:
    from container.worker.runtime import Worker
    from workflows.settings import Tables, WorkerSettings

    user = projects.user_id_for(OWNER)
    sqs = client("sqs")
    old = sqs.create_queue(QueueName=names.work_queue_name("legacy", user), Attributes={"VisibilityTimeout": "60"})
    settings = WorkerSettings.from_env(info.worker_env(2, 1) | {"WEBORDINARY_WORKER_ID": "upgrader"})
    ready = Worker(settings, Tables()).claim("legacy", user)
    assert ready.claimed and ready.queueUrl == old["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=ready.queueUrl, AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == str(names.WORK_QUEUE_VISIBILITY_SECONDS)


def test_a_build_that_fails_pushes_the_change_publishes_nothing_and_attaches_its_log(
    info: StackInfo, tmp_path: Path
) -> None:
    repo = create_demo_repository(tmp_path)
    (tmp_path / "break").mkdir()
    clone = git.Repo.clone_from(repo, tmp_path / "break" / "site")
    (Path(clone.working_tree_dir or "") / "build.py").write_text(
        "import sys\nprint('vite: cannot resolve /logo.svg')\nsys.exit(1)\n"
    )
    clone.index.add(["build.py"])
    clone.index.commit("A build that fails")
    clone.remote().push("main")
    add_project(info, "unbuilt", repo)
    outcome = deliver(info, "unbuilt@mail.webordinary.test", 'replace "Call us" with "Ring us"')
    described = finish(outcome.executionArn)
    assert described["status"] == "FAILED" and described["error"] == "CommandFailedError"
    evs = events(outcome.threadId)
    assert evs[-2].type == "CommandFailed" and evs[-2].data["Error"] == "BuildFailedError"
    (reply,) = replies(info, outcome.threadId)
    assert reply["attachments"] == ["build-log.txt"] and "could not be rebuilt" in reply["text"]
    assert "cannot resolve" not in reply["text"]
    assert reply["messageId"] == evs[-1].data["replyMessageId"]  # answers to it find the thread
    # The change is on the thread branch all the same, and no preview was published.
    assert "Ring us" in git.Repo(repo).git.show(f"thread-{outcome.threadId}:src/contact.html")
    listed = client("s3").list_objects_v2(Bucket=names.PREVIEW_BUCKET.local_name, Prefix="previews/unbuilt/")
    assert listed.get("KeyCount", 0) == 0
