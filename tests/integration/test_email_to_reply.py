"""From a raw .eml to the reply, on the embedded stack: the real ASL on moto's interpreter, the real inbound
handler, a real worker process, a real bare git repository."""

from __future__ import annotations

import email.policy
import json
import re
from email.message import EmailMessage
from pathlib import Path

import git
import pytest

from tests.conftest import FIXTURES
from workflows import names, projects
from workflows import replies as replies_words
from workflows.adapters.aws import client
from workflows.events import fold
from workflows.local import operations
from workflows.local.demo import create_demo_repository
from workflows.local.stack import StackInfo

pytestmark = pytest.mark.integration

ALICE = "alice@example.com"
MAX_WARM_TRANSITIONS = 15  # issue 21's target for the warm happy path


def _add_project(info: StackInfo, name: str, repo: Path, allow: list[str]) -> None:
    project = projects.make_project(name, str(repo), allow, build_command="python3 build.py", output_dir="dist")
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)


def _raw(to: str, message_id: str = "<CAF1234-call-us@mail.example.com>") -> bytes:
    raw = (FIXTURES / "mail" / "change-call-us.eml").read_bytes()
    raw = raw.replace(b"bakery@mail.webordinary.test", to.encode())
    return raw.replace(b"<CAF1234-call-us@mail.example.com>", message_id.encode())


def test_email_becomes_commit_preview_and_threaded_reply(info: StackInfo, repos: Path) -> None:
    bare_path = create_demo_repository(repos)
    _add_project(info, "bakery", bare_path, [ALICE])

    outcome = operations.deliver_email(info, _raw("bakery@mail.webordinary.test"))

    assert outcome.accepted and outcome.rejected is None
    assert outcome.threadId is not None and outcome.executionArn is not None
    described = operations.wait_for_execution(client("stepfunctions"), outcome.executionArn, timeout=120)
    assert described["status"] == "SUCCEEDED", operations.trace(client("stepfunctions"), outcome.executionArn)
    thread = outcome.threadId
    branch = f"thread-{thread}"
    assert described["name"].startswith(thread)

    # git: the thread branch was pushed to the bare repository, one commit on top of main, with the edit.
    bare = git.Repo(bare_path)
    head = bare.commit(branch)
    assert head.parents[0].hexsha == bare.commit("main").hexsha
    assert b"Ring us" in (head.tree / "src" / "index.html").data_stream.read()
    assert b"Ring us" in (head.tree / "src" / "contact.html").data_stream.read()
    assert b"Call us" not in (head.tree / "src" / "index.html").data_stream.read()
    assert f"Thread: {thread}" in str(head.message)
    assert sorted(head.stats.files) == ["src/contact.html", "src/index.html"]
    assert "dist/index.html" not in [item.path for item in head.tree.traverse()]  # type: ignore[union-attr]

    output = json.loads(described["output"])
    result = output["result"]
    assert result["commit"] == head.hexsha
    assert result["branch"] == branch

    # preview: the built page (layout applied by the site's build step) is served at the thread's own origin.
    assert re.fullmatch(rf"http://{thread}-bakery\.preview\.localhost:\d+/", result["previewUrl"])
    page = operations.fetch_preview(result["previewUrl"])
    assert page.status_code == 200
    assert "Ring us" in page.text and "<footer>Harbour Bakery</footer>" in page.text
    contact = operations.fetch_preview(result["previewUrl"] + "contact.html")
    assert contact.status_code == 200 and "Ring us" in contact.text
    # and this change's own preview, which later changes leave alone
    assert re.fullmatch(rf"http://{head.hexsha[:7]}-bakery\.preview\.localhost:\d+/", result["versionUrl"])
    assert "Ring us" in operations.fetch_preview(result["versionUrl"] + "contact.html").text
    obj = client("s3").get_object(Bucket=names.PREVIEW_BUCKET.local_name, Key=f"previews/bakery/{thread}/contact.html")
    assert b"Ring us" in obj["Body"].read()
    assert obj["ContentType"].startswith("text/html")

    # events: every step recorded once, in order.
    events = operations.thread_events(client("dynamodb"), thread)
    types = [e.type for e in events]
    assert types == ["MessageReceived", "CommandDispatched", "CommandSucceeded", "ReplySent"]
    assert events[0].data["thread"] == {
        "projectId": "bakery",
        "userId": events[0].data["thread"]["userId"],
        "branch": branch,
    }
    assert events[1].data["via"] in {"warm", "spawned"} and events[1].data["claimed"]
    assert [e.order for e in events] == sorted(e.order for e in events)
    assert [e.order.split("#")[1:] for e in events] == [[described["name"], f"Record {t}"] for t in types]
    assert all(e.execution == described["name"] for e in events)
    assert events[2].data["commit"] == head.hexsha
    state = fold(thread, events)
    assert state.projectId == "bakery" and state.branch == branch and state.lastCommit == head.hexsha
    assert state.messages[outcome.messageId].status == "succeeded"
    assert state.messages[outcome.messageId].replied

    # reply: threaded onto the user's mail, plus-addressed, with the link.
    replies = [r for r in operations.outbox(info) if r["threadId"] == thread]
    assert len(replies) == 1
    reply = replies[0]
    assert reply["to"] == [ALICE]
    assert reply["inReplyTo"] == "<CAF1234-call-us@mail.example.com>"
    assert "<CAF1234-call-us@mail.example.com>" in reply["references"]
    assert reply["replyTo"] == f"bakery+{thread}@mail.webordinary.test"
    assert reply["subject"].startswith("Re: Phone wording on the site")
    assert reply["messageId"] == output["sent"]["replyMessageId"]
    assert f"See it here: {result['versionUrl']}" in reply["text"] and result["previewUrl"] in reply["text"]
    assert f"version {head.hexsha[:7]}" in reply["text"]
    assert head.hexsha not in reply["text"] and branch not in reply["text"] and replies_words.leaks(reply["text"]) == []
    assert "\\r" not in reply["text"] and "\\n" not in reply["text"]  # real line breaks, not escapes

    # a follow-up to the reply (headers only, plus-address dropped) continues the same thread and branch.
    follow_up = (
        _raw("bakery@mail.webordinary.test", "<CAF5678-follow@mail.example.com>")
        .replace(b'"Call us" with "Ring us"', b'"555-0100" with "555-0199"')
        .replace(
            b"Subject: Phone wording", b"In-Reply-To: " + reply["messageId"].encode() + b"\nSubject: Re: Phone wording"
        )
    )
    second = operations.deliver_email(info, follow_up)
    assert second.accepted and second.threadId == thread
    assert second.executionArn is not None
    described = operations.wait_for_execution(client("stepfunctions"), second.executionArn, timeout=120)
    assert described["status"] == "SUCCEEDED", operations.trace(client("stepfunctions"), second.executionArn)
    newer = bare.commit(branch)
    assert newer.parents[0].hexsha == head.hexsha  # linear history on the thread branch
    assert b"555-0199" in (newer.tree / "src" / "index.html").data_stream.read()
    assert b"Ring us" in (newer.tree / "src" / "index.html").data_stream.read()
    assert bare.commit("main").hexsha == head.parents[0].hexsha  # main untouched

    # A reply written with Python's email package (as a script or a Python-based client sends it): our long
    # reply ids arrive folded into RFC 2047 encoded words, and no plus-address or subject tag is there to help.
    latest = [r for r in operations.outbox(info) if r["threadId"] == thread][-1]
    scripted = EmailMessage(policy=email.policy.SMTP)
    scripted["From"] = ALICE
    scripted["To"] = "bakery@mail.webordinary.test"
    scripted["Subject"] = "Re: Phone wording"
    scripted["Message-ID"] = "<CAF9012-scripted@mail.example.com>"
    scripted["In-Reply-To"] = latest["messageId"]
    # As scripts commonly do, References names the parent only: the thread's own short ids are not there.
    scripted["References"] = latest["messageId"]
    scripted.set_content('Please replace "Ring us" with "Phone us".\n')
    raw = scripted.as_bytes()
    assert b"In-Reply-To: =?utf-8?q?=3C" in raw and b"References: =?utf-8?q?=3C" in raw, raw[:600]
    third = operations.deliver_email(info, raw)
    assert third.accepted and third.threadId == thread, third
    assert third.executionArn is not None
    described = operations.wait_for_execution(client("stepfunctions"), third.executionArn, timeout=120)
    assert described["status"] == "SUCCEEDED", operations.trace(client("stepfunctions"), third.executionArn)
    assert bare.commit(branch).parents[0].hexsha == newer.hexsha

    # The warm happy path (the pair's worker still owns it): at most 15 state transitions, none of them a
    # claim or a spawn.
    entered = [s["state"] for s in operations.trace(client("stepfunctions"), third.executionArn)["steps"]]
    assert len(entered) <= MAX_WARM_TRANSITIONS, entered
    assert not {"Warm pool?", "Claim warm worker", "Spawn worker"} & set(entered), entered


def test_a_thread_id_of_another_project_is_refused_not_joined(info: StackInfo, repos: Path) -> None:
    _add_project(info, "owner-site", create_demo_repository(repos / "a"), [ALICE])
    _add_project(info, "other-site", create_demo_repository(repos / "b"), [ALICE])
    first = operations.deliver_email(info, _raw("owner-site@mail.webordinary.test", "<own-1@mail.example.com>"))
    assert first.executionArn and first.threadId
    sfn = client("stepfunctions")
    assert operations.wait_for_execution(sfn, first.executionArn, timeout=120)["status"] == "SUCCEEDED"
    # An execution for another project that names the same thread (intake never builds one; the workflow must
    # still refuse it rather than trust its input).
    crafted = json.loads(sfn.describe_execution(executionArn=first.executionArn)["input"])
    crafted.update(projectId="other-site", messageId="ses-crafted-0001")
    arn = sfn.start_execution(
        stateMachineArn=info.stateMachineArn, name=f"{first.threadId}-ses-crafted-0001", input=json.dumps(crafted)
    )["executionArn"]

    described = operations.wait_for_execution(sfn, arn, timeout=120)

    assert described["status"] == "FAILED", operations.trace(sfn, arn)
    failed = [
        e for e in operations.thread_events(client("dynamodb"), first.threadId) if e.execution == described["name"]
    ]
    assert [e.type for e in failed] == ["CommandFailed", "ReplySent"]
    assert failed[0].data["Error"] == "ThreadConflictError"
    thread = client("dynamodb").get_item(
        TableName=names.THREADS_TABLE.local_name, Key={"threadId": {"S": first.threadId}}, ConsistentRead=True
    )["Item"]
    assert thread["projectId"]["S"] == "owner-site"  # the mapping was not taken over


def test_same_mail_delivered_twice_runs_once_and_replies_once(info: StackInfo, repos: Path) -> None:
    bare_path = create_demo_repository(repos)
    _add_project(info, "twice", bare_path, [ALICE])
    raw = _raw("twice@mail.webordinary.test", "<dup-1@mail.example.com>")

    first = operations.deliver_email(info, raw, ses_id="ses-duplicate-0001")
    second = operations.deliver_email(info, raw, ses_id="ses-duplicate-0001")

    assert first.executionArn == second.executionArn and second.duplicate
    assert first.executionArn is not None
    described = operations.wait_for_execution(client("stepfunctions"), first.executionArn, timeout=120)
    assert described["status"] == "SUCCEEDED"
    third = operations.deliver_email(info, raw, ses_id="ses-duplicate-0001")  # after it finished, too
    assert third.duplicate and third.executionArn == first.executionArn
    executions = client("stepfunctions").list_executions(stateMachineArn=info.stateMachineArn)["executions"]
    assert [e["name"] for e in executions].count(described["name"]) == 1
    assert len([r for r in operations.outbox(info) if r["threadId"] == first.threadId]) == 1


def test_rejected_sender_starts_nothing_records_and_keeps_mail(info: StackInfo, repos: Path) -> None:
    bare_path = create_demo_repository(repos)
    _add_project(info, "guarded", bare_path, [ALICE])
    raw = _raw("guarded@mail.webordinary.test").replace(b"alice@example.com", b"mallet@intruder.test")
    before = client("stepfunctions").list_executions(stateMachineArn=info.stateMachineArn)["executions"]

    outcome = operations.deliver_email(info, raw, ses_id="ses-rejected-0001")

    assert not outcome.accepted and outcome.rejected == "sender-not-allowed" and outcome.executionArn is None
    after = client("stepfunctions").list_executions(stateMachineArn=info.stateMachineArn)["executions"]
    assert len(after) == len(before)
    events = operations.thread_events(client("dynamodb"), "intake#guarded")
    rejected = [e for e in events if e.data.get("messageId") == "ses-rejected-0001"]
    assert [e.type for e in rejected] == ["MessageRejected"]
    assert rejected[0].data["reason"] == "sender-not-allowed" and rejected[0].data["sender"] == "mallet@intruder.test"
    kept = client("s3").get_object(Bucket=names.MAIL_BUCKET.local_name, Key="inbound/ses-rejected-0001")
    assert kept["Body"].read() == raw
    # redelivery of the rejected mail does not record a second rejection
    operations.deliver_email(info, raw, ses_id="ses-rejected-0001")
    events = operations.thread_events(client("dynamodb"), "intake#guarded")
    assert len([e for e in events if e.data.get("messageId") == "ses-rejected-0001"]) == 1


def test_unknown_project_is_rejected_and_kept(info: StackInfo) -> None:
    raw = _raw("nobody@mail.webordinary.test")
    outcome = operations.deliver_email(info, raw, ses_id="ses-unknown-0001")
    assert not outcome.accepted and outcome.rejected == "unknown-project"
    assert client("s3").get_object(Bucket=names.MAIL_BUCKET.local_name, Key="inbound/ses-unknown-0001")
    events = operations.thread_events(client("dynamodb"), "intake#-")
    assert any(e.data.get("messageId") == "ses-unknown-0001" for e in events)


def test_editor_finding_nothing_fails_visibly_with_a_plain_reply(info: StackInfo, repos: Path) -> None:
    bare_path = create_demo_repository(repos)
    _add_project(info, "nomatch", bare_path, [ALICE])
    raw = _raw("nomatch@mail.webordinary.test", "<nomatch@mail.example.com>").replace(
        b'"Call us" with "Ring us"', b'"Fax us" with "Mail us"'
    )
    outcome = operations.deliver_email(info, raw)
    assert outcome.executionArn is not None
    described = operations.wait_for_execution(client("stepfunctions"), outcome.executionArn, timeout=120)
    assert described["status"] == "FAILED" and described.get("error") == "CommandFailedError"
    events = operations.thread_events(client("dynamodb"), str(outcome.threadId))
    assert [e.type for e in events][-2:] == ["CommandFailed", "ReplySent"]
    assert events[-2].data["Error"] == "NothingToChangeError"
    reply = [r for r in operations.outbox(info) if r["threadId"] == outcome.threadId]
    assert len(reply) == 1 and "could not be made" in reply[0]["text"] and "Fax us" in reply[0]["text"]
    assert "NothingToChangeError" not in reply[0]["text"] and replies_words.leaks(reply[0]["text"]) == []
    assert f"thread-{outcome.threadId}" not in [h.name for h in git.Repo(bare_path).heads]
