"""Sending a reply: the words, the threading headers and the Message-ID the workflow records."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from lambdas.reply.handler import handler
from workflows import replies
from workflows.aws import client
from workflows.local.emulator_fixes import apply_in_process_fixes
from workflows.local.operations import LocalLambdaContext
from workflows.models import ReplyEnvelope
from workflows.replies import FailureFacts, InlineImage, MailAttachment, RenderedReply, ReplyFacts, ResultFacts
from workflows.reply_mail import ReplyRequest, SentReply, mime, send_reply
from workflows.settings import ReplySettings

ENVELOPE = ReplyEnvelope(
    fromAddress="bakery@mail.webordinary.test",
    to="alice@example.com",
    replyTo="bakery+abcdefgh@mail.webordinary.test",
    subject="Re: Phone wording [wo:abcdefgh]",
    inReplyTo="<CAF1@mail.example.com>",
    references="<CAF0@mail.example.com> <CAF1@mail.example.com>",
)
FACTS = ReplyFacts(
    outcome="done",
    threadId="abcdefgh",
    result=ResultFacts(summary="Replaced it.", previewUrl="http://p.example/", commit="3f2a9c41d0b7e6a5f4c3"),
)


def _last_sent() -> object:
    raw = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages[-1].raw_data
    return BytesParser(policy=policy.default).parsebytes(raw.encode() if isinstance(raw, str) else raw)


def test_a_reply_goes_out_threaded_with_its_words_and_its_message_id(in_process_aws: None) -> None:
    apply_in_process_fixes("email.amazonses.com")  # SES keeps the headers and assigns the Message-ID, as AWS does
    client("sesv2").create_email_identity(EmailIdentity="mail.webordinary.test")
    sent = send_reply(
        client("sesv2"), ReplyRequest(facts=FACTS, reply=ENVELOPE), ReplySettings(ses_message_id_domain="x.test")
    )
    assert sent.replyMessageId == f"<{sent.sesMessageId}@x.test>"
    mail = _last_sent()
    assert mail["In-Reply-To"] == ENVELOPE.inReplyTo and mail["References"] == ENVELOPE.references  # type: ignore[index]
    assert mail["Reply-To"] == ENVELOPE.replyTo and mail["X-WebOrdinary-Outcome"] == "done"  # type: ignore[index]
    assert mail["Auto-Submitted"] == "auto-replied"  # type: ignore[index]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    assert "Replaced it." in text and "See it here: http://p.example/" in text and "version 3f2a9c4" in text


def test_the_handler_takes_the_workflow_payload(in_process_aws: None) -> None:
    apply_in_process_fixes("email.amazonses.com")
    client("sesv2").create_email_identity(EmailIdentity="mail.webordinary.test")
    payload = {"facts": FACTS.model_dump(mode="json"), "reply": ENVELOPE.model_dump(mode="json")}
    result = SentReply.model_validate(handler(payload, LocalLambdaContext(function_name="webordinary-reply")))
    assert result.replyMessageId.endswith("@email.amazonses.com>")
    assert "Replaced it." in _last_sent().get_body(("plain",)).get_content()  # type: ignore[attr-defined]


def test_a_failed_build_is_told_in_words_with_its_log_attached(in_process_aws: None) -> None:
    apply_in_process_fixes("email.amazonses.com")
    client("sesv2").create_email_identity(EmailIdentity="mail.webordinary.test")
    log = "The build failed (exit status 1).\nnpm ERR! missing script: build\nsh: 1: vite: not found"
    facts = ReplyFacts(outcome="failed", threadId="abcdefgh", failure=FailureFacts(Error="BuildFailedError", Cause=log))
    sent = send_reply(client("sesv2"), ReplyRequest(facts=facts, reply=ENVELOPE), ReplySettings())
    mail = _last_sent()
    assert mail["Message-ID"] == sent.replyMessageId  # type: ignore[index]
    assert mail["In-Reply-To"] == ENVELOPE.inReplyTo and mail["Reply-To"] == ENVELOPE.replyTo  # type: ignore[index]
    assert mail["X-WebOrdinary-Outcome"] == "failed" and mail["Subject"] == ENVELOPE.subject  # type: ignore[index]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    assert "could not be rebuilt" in text and "build-log.txt" in text and "npm" not in text
    assert replies.leaks(text) == []
    (attached,) = list(mail.iter_attachments())  # type: ignore[attr-defined]
    assert attached.get_filename() == "build-log.txt" and "vite: not found" in attached.get_content()


def test_html_with_an_inline_image_nests_as_mail_clients_expect() -> None:
    rendered = RenderedReply(
        text="Hello,\r\n\r\nLook.\r\n",
        html='<p>Look.</p><img src="cid:shot@webordinary">',
        images=(
            InlineImage(content_id="shot@webordinary", filename="after.png", content_type="image/png", data=b"\x89PNG"),
        ),
        attachments=(MailAttachment(filename="build-log.txt", content_type="text/plain", data=b"log"),),
    )
    message = BytesParser(policy=policy.default).parsebytes(mime(ENVELOPE, rendered, FACTS))
    shape = [part.get_content_type() for part in message.walk()]
    assert shape == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "text/plain",
    ]
    image = next(part for part in message.walk() if part.get_content_type() == "image/png")
    assert image["Content-ID"] == "<shot@webordinary>"
