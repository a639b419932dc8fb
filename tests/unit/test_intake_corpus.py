"""The intake corpus: every mail in ``tests/fixtures/mail/corpus/cases.json`` delivered as SES delivers it (raw
MIME in the mail bucket, then the receipt record), with the outcome intake must reach: the decision, the event,
the raw mail kept, the normalised message and its attachments in S3, and the notice the sender gets (or, for
forged, automatic and unknown mail, does not get).

Fast: the tables are the stores' in-memory fakes (``tests/unit/test_store_contracts.py`` holds them to
DynamoDB's behaviour) and S3, SES and Step Functions are moto in this process. Accepted mail starts a state
machine that succeeds at once; the workflow itself, and intake on the real tables through the Lambda handler,
run on the embedded stack (``tests/integration/test_email_to_reply.py``, ``test_intake_handler.py``).
Thread resolution, idempotency and rate limiting are tested below the corpus.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from tests.conftest import FIXTURES
from workflows import intake, names, projects
from workflows.adapters.aws import client
from workflows.adapters.eventlog import InMemoryEventLog
from workflows.adapters.stores import messages
from workflows.adapters.stores.messages import InMemoryMessages
from workflows.adapters.stores.projects import InMemoryProjects
from workflows.adapters.stores.threads import InMemoryThreads
from workflows.attachments import AttachmentLimits
from workflows.local import operations
from workflows.local.emulator_fixes import apply_in_process_fixes
from workflows.models import NormalisedMessage
from workflows.settings import InboundSettings

CORPUS = FIXTURES / "mail" / "corpus"
MANIFEST = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
DOMAIN = "mail.webordinary.test"
PROJECT = MANIFEST["project"]
MB = 1024 * 1024


# --- generated mail: too big or too hostile to keep as files ---------------------------------------------------


def _mail(
    sender: str = "Carol <carol@example.com>", subject: str = "Generated", to: str = f"{PROJECT}@{DOMAIN}"
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = f"<{hashlib.sha256(subject.encode()).hexdigest()[:16]}@example.com>"
    return msg


def _with_files(text: str, files: list[tuple[str, bytes]], subject: str) -> bytes:
    msg = _mail(subject=subject)
    msg.set_content(text)
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def _zip_bomb() -> bytes:
    """100 MB of zeros, deflated to about 100 KB, twice over (a nested bomb): inert as long as nobody unzips."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", bytes(100 * MB))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(4):
            z.writestr(f"layer{i}.zip", inner.getvalue())
    return outer.getvalue()


def _nested(depth: int) -> bytes:
    head = _mail(subject="Nested").as_string().rstrip("\n") + "\n"
    lines = [head + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b0"\n']
    for level in range(depth):
        lines.append(f'--b{level}\nContent-Type: multipart/mixed; boundary="b{level + 1}"\n')
    lines.append(f"--b{depth}\nContent-Type: text/plain\n\nMake the header red.\n")
    lines.extend(f"--b{level}--\n" for level in range(depth, -1, -1))
    return "\n".join(lines).encode()


def _many_parts(count: int) -> bytes:
    msg = _mail(subject="Parts")
    msg.set_content("Make the header red.")
    for i in range(count):
        msg.add_attachment(f"part {i}", subtype="plain", disposition="inline")
    return msg.as_bytes()


RECIPES: dict[str, Callable[[], bytes]] = {
    "ten-mb-body": lambda: _with_files("Make every page say this: " + "bread " * (10 * MB // 6), [], "Ten MB"),
    "over-40-mb": lambda: _with_files("Put these photos in the gallery.", [("huge.bin", bytes(31 * MB))], "41 MB"),
    "eleven-attachments": lambda: _with_files(
        "Put these in the gallery.", [(f"photo{i}.jpg", b"\xff\xd8\xff" + bytes(100)) for i in range(11)], "Eleven"
    ),
    "attachment-11-mb": lambda: _with_files("Use this video.", [("video.mp4", bytes(11 * MB))], "Eleven MB"),
    "attachments-27-mb-total": lambda: _with_files(
        "Use these.", [(f"part{i}.bin", bytes([i]) * (9 * MB)) for i in range(3)], "27 MB"
    ),
    "zip-bomb": lambda: _with_files("Here are the photos, all of them.", [("photos.zip", _zip_bomb())], "Zip"),
    "mime-nesting-bomb": lambda: _nested(60),
    "four-hundred-parts": lambda: _many_parts(400),
    "null-bytes-and-garbage": lambda: b"\x00\xff\xfe garbage \x00\r\n\r\n\x00\x01\x02" * 1000,
}


def _wrap(path: Path, kind: str) -> bytes:
    """A bare body from the real-world samples, sent as an allowed sender's mail."""
    if kind == "html":
        msg = _mail("Alex L <alex.l@example.com>", "Re: Test message")
        msg.set_content(path.read_text(encoding="utf-8", errors="replace"), subtype="html", cte="8bit")
    else:
        msg = _mail("Abhishek <erp@example.com>", "Re: Riak")
        msg.set_content(path.read_text(encoding="utf-8"), cte="8bit")
    return msg.as_bytes()


def _raw(case: dict[str, Any]) -> bytes:
    if "recipe" in case:
        return RECIPES[case["recipe"]]()
    path = CORPUS / case["file"]
    return _wrap(path, case["wrap"]) if "wrap" in case else path.read_bytes()


# --- a project, and SES as a function ------ -------------------------------------------------------------


@dataclass
class Corpus:
    deps: intake.IntakeDeps
    messages: InMemoryMessages
    threads: InMemoryThreads

    def deliver(
        self,
        raw: bytes,
        ses_id: str,
        *,
        verdicts: dict[str, str] | None = None,
        recipients: list[str] | None = None,
        source: str = "",
    ) -> intake.IntakeOutcome:
        """What SES does: the receipt rule's S3 action stores the raw MIME, then its Lambda action runs."""
        client("s3").put_object(Bucket=names.MAIL_BUCKET.local_name, Key=f"{names.RAW_MAIL_PREFIX}{ses_id}", Body=raw)
        status = {"spam": "PASS", "virus": "PASS", "spf": "PASS", "dkim": "PASS", "dmarc": "PASS", **(verdicts or {})}
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = intake.SesRecord.model_validate(
            {
                "eventSource": "aws:ses",
                "ses": {
                    "mail": {"messageId": ses_id, "source": source, "timestamp": now, "destination": []},
                    "receipt": {
                        "recipients": recipients or [f"{PROJECT}@{DOMAIN}"],
                        "timestamp": now,
                        **{f"{name}Verdict": {"status": value} for name, value in status.items()},
                    },
                },
            }
        )
        return intake.receive(self.deps, record)


@pytest.fixture(scope="module")
def corpus(in_process_aws: None) -> Corpus:
    # SES as AWS sends it (the emulator fix renders Simple content to MIME with its headers), the mail bucket,
    # and a state machine that succeeds at once: the workflow itself runs in the integration tests.
    apply_in_process_fixes("email.amazonses.com")
    client("s3").create_bucket(Bucket=names.MAIL_BUCKET.local_name)
    client("sesv2").create_email_identity(EmailIdentity=DOMAIN)
    noop = client("stepfunctions").create_state_machine(
        name="corpus-noop",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/corpus-noop",
    )["stateMachineArn"]
    messages, threads = InMemoryMessages(), InMemoryThreads()
    deps = intake.IntakeDeps(
        s3=client("s3"),
        stepfunctions=client("stepfunctions"),
        settings=InboundSettings(inbound_domain=DOMAIN, state_machine_arn=noop),
        messages=messages,
        threads=threads,
        projects=InMemoryProjects(
            projects.make_project(PROJECT, "/nowhere", MANIFEST["allowed"]),
            projects.make_project("corpus-b", "/nowhere", ["alice@example.com"]),
        ),
        events=InMemoryEventLog(),
        sesv2=lambda: client("sesv2"),
        limits=AttachmentLimits(),
    )
    return Corpus(deps=deps, messages=messages, threads=threads)


def _sent() -> list[Message]:
    raws = [getattr(m, "raw_data", "") for m in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages]
    return [BytesParser(policy=policy.default).parsebytes(r.encode() if isinstance(r, str) else r) for r in raws]


def _notices_to(address: str) -> list[Message]:
    return [m for m in _sent() if address in str(m.get("To", "")) and m.get("X-WebOrdinary-Notice")]


def _rejection(corpus: Corpus, project: str, ses_id: str) -> list[Any]:
    return [e for e in corpus.deps.events.read(f"intake#{project}") if e.data.get("messageId") == ses_id]


def _stored_message(key: str) -> NormalisedMessage:
    body = client("s3").get_object(Bucket=names.MAIL_BUCKET.local_name, Key=key)["Body"].read()
    return NormalisedMessage.model_validate_json(body)


def _message_key(outcome: intake.IntakeOutcome) -> str:
    return f"{names.MESSAGE_PREFIX}{outcome.projectId}/{outcome.threadId}/{outcome.messageId}.json"


# --- the corpus ----------------------------------------------------------------------------------------------


def _case_id(case: dict[str, Any]) -> str:
    name = case.get("recipe") or case["file"].rsplit("/", 1)[-1]
    return name + ("+" + "+".join(f"{k}={v}" for k, v in case["verdicts"].items()) if "verdicts" in case else "")


def test_the_corpus_is_large_and_varied() -> None:
    files = {c["file"] for c in MANIFEST["cases"] if "file" in c}
    assert len(files) >= 40
    assert {c["expect"] for c in MANIFEST["cases"]} == {"accepted", "rejected"}
    reasons = {c.get("reason") for c in MANIFEST["cases"]} - {None}
    assert reasons >= {
        "auto-reply", "bounce", "loop", "no-sender", "sender-not-allowed", "spam", "virus", "auth-failed",
        "empty-instruction", "instruction-too-long", "too-large", "too-many-attachments", "attachment-too-large",
        "malformed-mail",
    }  # fmt: skip


@pytest.mark.parametrize("index,case", list(enumerate(MANIFEST["cases"])), ids=[_case_id(c) for c in MANIFEST["cases"]])
def test_corpus_mail_gets_its_outcome(corpus: Corpus, index: int, case: dict[str, Any]) -> None:
    raw = _raw(case)
    ses_id = f"corpus-{index:03d}"
    sender = case.get("sender", "")
    outcome = corpus.deliver(raw, ses_id, verdicts=case.get("verdicts"), source=sender)

    # Whatever happened, the raw mail is kept where SES put it.
    kept = client("s3").head_object(Bucket=names.MAIL_BUCKET.local_name, Key=f"inbound/{ses_id}")
    assert kept["ContentLength"] == len(raw)

    if case["expect"] == "rejected":
        assert not outcome.accepted and outcome.rejected == case["reason"], outcome
        assert outcome.executionArn is None
        events = _rejection(corpus, PROJECT, ses_id) or _rejection(corpus, "-", ses_id)
        assert [e.type for e in events] == ["MessageRejected"]
        assert events[0].data["reason"] == case["reason"] and events[0].data["rawKey"] == f"inbound/{ses_id}"
        assert events[0].data["notice"] == case["notice"]
        if sender:
            assert events[0].data["sender"] == sender
        return

    assert outcome.accepted and outcome.status == "STARTED", outcome
    message = _stored_message(_message_key(outcome))
    for check, compare in (
        ("instruction", lambda got, want: got == want),
        ("instructionStartsWith", lambda got, want: got.startswith(want)),
        ("instructionEndsWith", lambda got, want: got.endswith(want)),
    ):
        if check in case:
            assert compare(message.instruction, case[check]), message.instruction
    for unwanted in case.get("instructionExcludes", []):
        assert unwanted not in message.instruction
    if "subject" in case:
        assert message.subject == case["subject"]
    if "senderName" in case:
        assert message.senderName == case["senderName"]
    if "attachments" in case:
        assert [[a.filename, a.kind, a.contentType] for a in message.attachments] == case["attachments"]
    assert message.skippedAttachments == case.get("skipped", [])
    for attachment in message.attachments:
        stored = client("s3").get_object(Bucket=names.MAIL_BUCKET.local_name, Key=attachment.key)["Body"].read()
        assert (
            attachment.key == f"attachments/{attachment.sha256}" == f"attachments/{hashlib.sha256(stored).hexdigest()}"
        )
        assert len(stored) == attachment.size
    described = client("stepfunctions").describe_execution(executionArn=outcome.executionArn)
    execution_input = json.loads(described["input"])
    reply = execution_input["reply"]
    assert all("\r" not in v and "\n" not in v for v in reply.values())
    assert reply["subject"].endswith(f"[wo:{outcome.threadId}]")
    if "references" in case:
        assert len(reply["references"].split()) == min(case["references"] + 1, 20)
    for reference in case.get("referencesInclude", []):
        assert reference in reply["references"].split()  # decoded, whatever encoding it arrived in


def test_zip_bombs_are_stored_as_the_bytes_they_arrived_as_never_unpacked(corpus: Corpus) -> None:
    bomb = _zip_bomb()
    raw = _with_files("Photos attached.", [("bomb.zip", bomb)], "Bomb")
    outcome = corpus.deliver(raw, "corpus-bomb-1")
    message = _stored_message(_message_key(outcome))
    [attachment] = message.attachments
    assert attachment.kind == "document" and attachment.contentType == "application/zip"
    assert attachment.size == len(bomb) < 2 * MB  # the compressed size: 400 MB inside were never expanded
    stored = client("s3").get_object(Bucket=names.MAIL_BUCKET.local_name, Key=attachment.key)["Body"].read()
    assert stored == bomb
    listed = client("s3").list_objects_v2(Bucket=names.MAIL_BUCKET.local_name, Prefix="attachments/")["Contents"]
    assert all(o["Size"] < 20 * MB for o in listed)


def test_notices_are_polite_threaded_and_cannot_loop(corpus: Corpus) -> None:
    raw = (
        (CORPUS / "own" / "24-unknown-sender.eml").read_bytes().replace(b"stranger@unknown.test", b"nosy@unknown.test")
    )
    outcome = corpus.deliver(raw, "corpus-notice-1", source="nosy@unknown.test")
    assert outcome.rejected == "sender-not-allowed"
    [notice] = _notices_to("nosy@unknown.test")
    assert str(notice["From"]) == f"{PROJECT}@{DOMAIN}"
    assert str(notice["Subject"]) == "Re: Hello website"
    assert str(notice["In-Reply-To"]) == "<0024.nosy@unknown.test>"
    assert str(notice["Auto-Submitted"]) == "auto-replied"  # auto-responders must not answer it
    assert str(notice["X-WebOrdinary-Notice"]) == "sender-not-allowed"
    text = notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "nosy@unknown.test is not one of them" in text and "casino" not in text


def test_an_allowed_sender_is_told_what_went_wrong(corpus: Corpus) -> None:
    raw = RECIPES["eleven-attachments"]().replace(b"carol@example.com", b"bob@example.org")
    outcome = corpus.deliver(raw, "corpus-notice-2", source="bob@example.org")
    assert outcome.rejected == "too-many-attachments"
    [notice] = _notices_to("bob@example.org")
    text = notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert (
        "11 attachments" in text and "at most 10 attachments" in text and "Nothing on your website was changed" in text
    )


# --- idempotency and flooding --------------------------------------------------------------------------------


def test_redelivery_of_an_accepted_mail_starts_one_execution(corpus: Corpus) -> None:
    raw = (CORPUS / "own" / "09-nested-multipart.eml").read_bytes()
    first = corpus.deliver(raw, "corpus-twice-1")
    second = corpus.deliver(raw, "corpus-twice-1")
    assert first.accepted and second.duplicate and second.executionArn == first.executionArn
    # A retry after a crash just before the decision was stored, once the execution has ended: the same thread,
    # the same execution, and Step Functions refuses a second one.
    operations.wait_for_execution(client("stepfunctions"), first.executionArn or "", timeout=30)
    del corpus.messages.rows[messages.decision_key("corpus-twice-1")]
    third = corpus.deliver(raw, "corpus-twice-1")
    assert third.threadId == first.threadId and third.executionArn == first.executionArn and third.duplicate
    executions = client("stepfunctions").list_executions(stateMachineArn=corpus.deps.settings.state_machine_arn)
    assert [e["name"] for e in executions["executions"]].count(first.executionName) == 1


def test_redelivery_of_a_rejected_mail_records_once_and_answers_once(corpus: Corpus) -> None:
    raw = (
        (CORPUS / "own" / "24-unknown-sender.eml").read_bytes().replace(b"stranger@unknown.test", b"twice@unknown.test")
    )
    for _ in range(2):
        outcome = corpus.deliver(raw, "corpus-twice-2")
    assert outcome.duplicate and outcome.rejected == "sender-not-allowed"
    del corpus.messages.rows[messages.decision_key("corpus-twice-2")]
    corpus.deliver(raw, "corpus-twice-2")  # the handler retried after a timeout, before it stored the decision
    assert len(_rejection(corpus, PROJECT, "corpus-twice-2")) == 1
    assert len(_notices_to("twice@unknown.test")) == 1


def test_a_flood_from_one_stranger_gets_one_refusal(corpus: Corpus) -> None:
    raw = (
        (CORPUS / "own" / "24-unknown-sender.eml").read_bytes().replace(b"stranger@unknown.test", b"flood@unknown.test")
    )
    for i in range(6):
        corpus.deliver(raw, f"corpus-flood-{i}")
    notices = [_rejection(corpus, PROJECT, f"corpus-flood-{i}")[0].data["notice"] for i in range(6)]
    assert notices == ["sent"] + ["rate-limited"] * 5
    assert len(_notices_to("flood@unknown.test")) == 1
    for i in range(6):  # every one of them is still recorded and kept
        assert client("s3").head_object(Bucket=names.MAIL_BUCKET.local_name, Key=f"inbound/corpus-flood-{i}")


def test_auto_replies_from_strangers_are_never_answered(corpus: Corpus) -> None:
    raw = (
        (CORPUS / "own" / "18-auto-reply-out-of-office.eml")
        .read_bytes()
        .replace(b"alice@example.com", b"away@unknown.test")
    )
    outcome = corpus.deliver(raw, "corpus-away-1")
    assert outcome.rejected == "auto-reply"
    assert _notices_to("away@unknown.test") == []


# --- threads -------------------------------------------------------------------------------------------------


def _instruction_mail(sender: str, body: str, *, to: str = f"{PROJECT}@{DOMAIN}", **headers: str) -> bytes:
    msg = _mail(sender, headers.pop("subject", "Website"), to=to)
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    del msg["Message-ID"]
    msg["Message-ID"] = f"<{hashlib.sha256((sender + body).encode()).hexdigest()[:20]}@example.com>"
    msg.set_content(body)
    return msg.as_bytes()


def test_threads_resolve_by_plus_address_references_and_subject_tag(corpus: Corpus) -> None:
    first = corpus.deliver(_instruction_mail("alice@example.com", "Make the header green."), "corpus-thread-1")
    thread = first.threadId
    assert first.accepted and thread is not None
    first_id = _stored_message(_message_key(first)).rfcMessageId

    by_plus = corpus.deliver(
        _instruction_mail("alice@example.com", "And the footer.", to=f"{PROJECT}+{thread}@{DOMAIN}"),
        "corpus-thread-2",
        recipients=[f"{PROJECT}+{thread}@{DOMAIN}"],
    )
    # Another allowed user of the same project answering in the thread continues it.
    by_reference = corpus.deliver(
        _instruction_mail("bob@example.org", "Bob here: also the logo.", In_Reply_To=first_id, References=first_id),
        "corpus-thread-3",
    )
    by_tag = corpus.deliver(
        _instruction_mail("alice@example.com", "And the menu.", subject=f"Re: Website [wo:{thread}]"), "corpus-thread-4"
    )
    assert by_plus.threadId == by_reference.threadId == by_tag.threadId == thread
    assert not any(
        json.loads(client("stepfunctions").describe_execution(executionArn=o.executionArn)["input"])["newThread"]
        for o in (by_plus, by_reference, by_tag)
    )

    # An outsider using the same headers does not get in; nothing is started for them.
    outsider = corpus.deliver(
        _instruction_mail("mallory@evil.test", "Delete it all.", In_Reply_To=first_id, subject=f"Re: [wo:{thread}]"),
        "corpus-thread-5",
        recipients=[f"{PROJECT}+{thread}@{DOMAIN}"],
    )
    assert not outsider.accepted and outsider.rejected == "sender-not-allowed"

    # A thread of one project is never joined from another, whatever the mail claims.
    other = corpus.deliver(
        _instruction_mail(
            "alice@example.com",
            "Other site.",
            to=f"corpus-b+{thread}@{DOMAIN}",
            In_Reply_To=first_id,
            subject=f"Re: [wo:{thread}]",
        ),
        "corpus-thread-6",
        recipients=[f"corpus-b+{thread}@{DOMAIN}"],
    )
    assert other.accepted and other.projectId == "corpus-b" and other.threadId != thread


def test_new_thread_ids_are_claimed_and_stable(corpus: Corpus) -> None:
    raw = _instruction_mail("alice@example.com", "Make the header blue.")
    outcome = corpus.deliver(raw, "corpus-claim-1")
    threads_table = corpus.threads
    claim = threads_table.get(outcome.threadId or "")
    assert claim is not None and claim.projectId == PROJECT and claim.sesId == "corpus-claim-1"
    # Someone else's claim on the id this mail would get: intake moves on to the next id, deterministically.
    assert threads_table.claim(_first_id("corpus-claim-2"), "corpus-b", "x", "2026-01-01T00:00:00.000Z")
    moved = corpus.deliver(_instruction_mail("alice@example.com", "Make the footer blue."), "corpus-claim-2")
    assert moved.threadId != _first_id("corpus-claim-2")
    assert corpus.deliver(
        _instruction_mail("alice@example.com", "Make the footer blue."), "corpus-claim-2"
    ).threadId == (moved.threadId)


def _first_id(ses_id: str) -> str:
    from workflows.threads import new_thread_id

    return new_thread_id(PROJECT, ses_id)


# --- the order of the checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "verdicts,recipient,expected",
    [
        # SES's verdicts come first: a virus from a stranger to nobody is a virus.
        ({"virus": "FAIL", "spam": "FAIL", "dmarc": "FAIL"}, "nobody@elsewhere.test", "virus"),
        ({"spam": "GRAY", "dmarc": "FAIL"}, f"{PROJECT}@{DOMAIN}", "spam"),
        # Then the headers: who sent it only matters for mail that is not automatic.
        ({"dmarc": "FAIL"}, "nobody@elsewhere.test", "unknown-project"),
        # Then trust: a forged From is never told that it is not allowed.
        ({"dmarc": "FAIL"}, f"{PROJECT}@{DOMAIN}", "auth-failed"),
        ({}, f"{PROJECT}@{DOMAIN}", "sender-not-allowed"),  # trusted, so it is the one answered
    ],
)
def test_the_cheapest_and_most_dangerous_checks_decide_first(
    corpus: Corpus, verdicts: dict[str, str], recipient: str, expected: str
) -> None:
    raw = (
        (CORPUS / "own" / "24-unknown-sender.eml").read_bytes().replace(b"stranger@unknown.test", b"order@unknown.test")
    )
    ses_id = f"corpus-order-{expected}-{len(verdicts)}"
    raw = raw.replace(b"order@unknown.test", f"order-{expected}@unknown.test".encode())
    outcome = corpus.deliver(raw, ses_id, verdicts=verdicts, recipients=[recipient])
    assert outcome.rejected == expected
    answered = 1 if expected == "sender-not-allowed" else 0
    assert len(_notices_to(f"order-{expected}@unknown.test")) == answered


def test_an_automatic_mail_is_recognised_before_its_sender_is_checked(corpus: Corpus) -> None:
    raw = (CORPUS / "own" / "18-auto-reply-out-of-office.eml").read_bytes()
    outcome = corpus.deliver(raw, "corpus-order-auto", verdicts={"dmarc": "FAIL"})
    assert outcome.rejected == "auto-reply"
