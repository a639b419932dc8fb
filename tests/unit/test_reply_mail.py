"""Sending a reply: the words, the threading headers and the Message-ID the workflow records."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from lambdas.reply.handler import handler
from workflows import replies
from workflows.adapters.aws import client
from workflows.adapters.reply_mail import ReplyRequest, SentReply, mime, send_reply
from workflows.local.emulator_fixes import apply_in_process_fixes
from workflows.local.operations import LocalLambdaContext
from workflows.models import ReplyEnvelope
from workflows.replies import FailureFacts, InlineImage, MailAttachment, RenderedReply, ReplyFacts, ResultFacts
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


# --- a change's pictures, inline ---------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PICTURED = ReplyFacts(
    outcome="done",
    threadId="abcdefgh",
    result=ResultFacts(
        summary='Put the new number on the contact page. <a href="https://evil.example/">click</a> ![x](https://evil.example/x.png)',
        previewUrl="http://abcdefgh-bakery.preview.localhost:8123/",
        versionUrl="http://3f2a9c4-bakery.preview.localhost:8123/",
        commit="3f2a9c41d0b7e6a5f4c3",
        filesChanged=["contact/index.html"],
        screenshots=[{"page": "/contact/", "key": "screenshots/bakery/3f2a9c4/1.png"}],  # type: ignore[list-item]
    ),
)


def test_a_reply_with_a_picture_is_text_and_html_with_the_png_inline_and_links_to_the_preview(
    in_process_aws: None,
) -> None:
    apply_in_process_fixes("email.amazonses.com")
    client("sesv2").create_email_identity(EmailIdentity="mail.webordinary.test")
    s3 = client("s3")
    s3.create_bucket(Bucket="previews-test")
    s3.put_object(Bucket="previews-test", Key="screenshots/bakery/3f2a9c4/1.png", Body=PNG)
    settings = ReplySettings(ses_message_id_domain="x.test", preview_bucket="previews-test")

    send_reply(client("sesv2"), ReplyRequest(facts=PICTURED, reply=ENVELOPE), settings, s3=s3)

    mail = _last_sent()
    assert mail["Reply-To"] == ENVELOPE.replyTo and mail["In-Reply-To"] == ENVELOPE.inReplyTo  # type: ignore[index]
    types = [part.get_content_type() for part in mail.walk()]  # type: ignore[attr-defined]
    assert types == ["multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png"]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    html = mail.get_body(("html",)).get_content()  # type: ignore[attr-defined]
    (image,) = [part for part in mail.walk() if part.get_content_type() == "image/png"]  # type: ignore[attr-defined]
    assert image.get_content() == PNG
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html
    assert 'href="http://3f2a9c4-bakery.preview.localhost:8123/contact/"' in html  # the page, on this change's preview
    assert "version 3f2a9c4" in html and "STOP" in html
    assert "A picture of the changed page is in this email." in text
    # The agent's words are text, never markup: no link or image of theirs.
    assert "evil.example/" not in "".join(__import__("re").findall(r'(?:href|src)="([^"]+)"', html))
    assert "&lt;a href=" in html
    assert not replies.leaks(text)


def test_a_picture_that_cannot_be_fetched_is_told_as_missing_and_the_reply_still_goes(in_process_aws: None) -> None:
    apply_in_process_fixes("email.amazonses.com")
    client("sesv2").create_email_identity(EmailIdentity="mail.webordinary.test")
    s3 = client("s3")
    s3.create_bucket(Bucket="previews-empty")  # empty: the picture is gone
    settings = ReplySettings(ses_message_id_domain="x.test", preview_bucket="previews-empty")

    send_reply(client("sesv2"), ReplyRequest(facts=PICTURED, reply=ENVELOPE), settings, s3=s3)

    mail = _last_sent()
    assert [part.get_content_type() for part in mail.walk()] == [  # type: ignore[attr-defined]
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    assert "There is no picture this time: the picture could not be found." in mail.get_body(("plain",)).get_content()  # type: ignore[attr-defined]


def test_a_reply_without_pictures_says_why_in_both_parts() -> None:
    facts = ReplyFacts(
        outcome="done",
        threadId="abcdefgh",
        result=ResultFacts(summary="Done.", screenshotNote="no browser is installed where your change was built"),
    )
    rendered = replies.render(facts)
    assert rendered.images == () and rendered.html is not None
    for body in (rendered.text, rendered.html):
        assert "There is no picture this time: no browser is installed where your change was built." in body
