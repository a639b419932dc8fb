"""Intake's pure rules: which SES verdicts let work run, which rejections are answered, what the answer says.
(The decisions against real AWS APIs run in tests/integration/test_intake_corpus.py.)"""

from __future__ import annotations

import json

import pytest

from tests.conftest import SHARED
from workflows import intake, replies
from workflows.errors import (
    AuthFailedError,
    AutoReplyError,
    BounceError,
    EmptyInstructionError,
    MailLoopError,
    MalformedMailError,
    NoSenderError,
    SenderNotAllowedError,
    SpamError,
    TooManyAttachmentsError,
    UnknownProjectError,
    VirusError,
)
from workflows.mail import MailHeaders

VERDICTS = ["PASS", "FAIL", "GRAY", "PROCESSING_FAILED"]
ALICE = MailHeaders(sender="alice@example.com", dkim_domains=("example.com",))


def _receipt(**statuses: str) -> intake.SesReceipt:
    values = {"spam": "PASS", "virus": "PASS", "spf": "PASS", "dkim": "PASS", "dmarc": "PASS", **statuses}
    return intake.SesReceipt.model_validate({f"{k}Verdict": {"status": v} for k, v in values.items()})


def test_the_real_ses_event_shape_parses() -> None:
    event = json.loads((SHARED / "data" / "aws-events" / "sesEvent.json").read_text())
    record = intake.SesEvent.model_validate(event).Records[0]
    assert record.ses.mail.messageId == "o3vrnil0e2ic28tr" and record.ses.receipt.recipients == ["johndoe@example.com"]
    assert intake.content_problem(record.ses.receipt) is None


@pytest.mark.parametrize("status", VERDICTS)
def test_spam_verdict_must_pass(status: str) -> None:
    problem = intake.content_problem(_receipt(spam=status), "bakery")
    if status == "PASS":
        assert problem is None
    else:
        assert isinstance(problem, SpamError) and status in str(problem) and problem.project_id == "bakery"


@pytest.mark.parametrize("status", VERDICTS)
def test_virus_verdict_must_pass(status: str) -> None:
    problem = intake.content_problem(_receipt(virus=status))
    assert problem is None if status == "PASS" else isinstance(problem, VirusError)


def test_a_missing_verdict_counts_as_not_passed() -> None:
    receipt = intake.SesReceipt.model_validate({})
    assert isinstance(intake.content_problem(receipt), VirusError)
    assert isinstance(intake.auth_problem(receipt, ALICE, "alice@example.com"), AuthFailedError)


@pytest.mark.parametrize("dmarc", VERDICTS)
@pytest.mark.parametrize("spf", VERDICTS)
@pytest.mark.parametrize("dkim", VERDICTS)
def test_dmarc_must_not_fail_and_spf_or_dkim_must_pass(dmarc: str, spf: str, dkim: str) -> None:
    problem = intake.auth_problem(_receipt(dmarc=dmarc, spf=spf, dkim=dkim), ALICE, "alice@example.com")
    allowed = dmarc != "FAIL" and "PASS" in (spf, dkim)
    assert (problem is None) == allowed, problem


def test_without_dmarc_pass_spf_and_dkim_count_only_for_the_from_domain() -> None:
    no_policy = _receipt(dmarc="GRAY")
    # SPF passed for the attacker's envelope domain, the From says alice@example.com: not enough.
    forged = MailHeaders(sender="alice@example.com", dkim_domains=("evil.test",))
    assert isinstance(intake.auth_problem(no_policy, forged, "bounce@evil.test"), AuthFailedError)
    assert intake.auth_problem(no_policy, forged, "bounces@mail.example.com") is None  # aligned envelope
    signed = MailHeaders(sender="alice@example.com", dkim_domains=("evil.test", "example.com"))
    assert intake.auth_problem(_receipt(dmarc="GRAY", spf="FAIL"), signed, "x@evil.test") is None
    # With DMARC PASS, SES has already checked alignment.
    assert intake.auth_problem(_receipt(), forged, "bounce@evil.test") is None


@pytest.mark.parametrize(
    "error,answered",
    [
        (SenderNotAllowedError("x"), "refusal"),
        (EmptyInstructionError("x"), "problem"),
        (TooManyAttachmentsError("x"), "problem"),
        (MalformedMailError("x"), "problem"),
        (AutoReplyError("x"), None),
        (BounceError("x"), None),
        (MailLoopError("x"), None),
        (SpamError("x"), None),
        (VirusError("x"), None),
        (AuthFailedError("x"), None),
        (UnknownProjectError("x"), None),
        (NoSenderError("x"), None),
    ],
)
def test_only_helpful_rejections_are_answered(error: Exception, answered: str | None) -> None:
    assert intake._NOTICE_FOR.get(error.reason) == answered  # type: ignore[attr-defined]


def test_notice_texts_say_what_happened_and_what_to_do() -> None:
    refusal = replies.notice(
        "refusal", SenderNotAllowedError("x"), "bakery@mail.webordinary.test", "stranger@example.com"
    ).text
    assert "stranger@example.com is not one of them" in refusal and "at most one of these a day" in refusal
    assert refusal.endswith("-- \r\nWebOrdinary\r\n")
    problem = replies.notice(
        "problem", TooManyAttachmentsError("The message has 11 attachments; the limit is at most 10."), "b@x", "a@y"
    ).text
    assert "The message has 11 attachments; the limit is at most 10." in problem
    assert "Nothing on your website was changed. Please send fewer files" in problem
    empty = replies.notice("problem", EmptyInstructionError("no new text"), "b@x", "a@y").text
    assert "only text quoted from earlier emails" in empty
    assert all("\r\n" in text and "\n\n" not in text.replace("\r\n", "") for text in (refusal, problem, empty))
