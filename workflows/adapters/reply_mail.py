"""Sending a reply to a change: the words from :mod:`workflows.replies`, the addressing and threading that
intake prepared (:class:`~workflows.models.ReplyEnvelope`), one SESv2 ``SendEmail``.

The workflow's ``Send reply`` state invokes this (through ``lambdas/reply``) after ``Claim the reply`` made sure
it is the execution's only reply; what it returns, the reply's Message-ID, is recorded with ``ReplySent`` so an
answer to the reply finds its thread.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from workflows import names
from workflows.models import ReplyEnvelope
from workflows.replies import RenderedReply, ReplyFacts, render
from workflows.settings import ReplySettings

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client
    from types_boto3_sesv2 import SESV2Client
    from types_boto3_sesv2.type_defs import BodyTypeDef, EmailContentTypeDef


class ReplyRequest(BaseModel):
    """The ``Send reply`` state's payload: what to say (facts, not words) and to whom."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    facts: ReplyFacts
    reply: ReplyEnvelope


class SentReply(BaseModel):
    model_config = ConfigDict(frozen=True)
    sesMessageId: str
    replyMessageId: str  # the Message-ID header SES gave the mail: <{sesMessageId}@{domain}>


def threading_headers(envelope: ReplyEnvelope, facts: ReplyFacts) -> list[tuple[str, str]]:
    """What every reply carries besides From/To/Reply-To/Subject, whichever way it is sent."""
    return [
        ("In-Reply-To", envelope.inReplyTo),
        ("References", envelope.references),
        ("X-WebOrdinary-Thread", facts.threadId),
        ("X-WebOrdinary-Outcome", facts.outcome),
        ("Auto-Submitted", "auto-replied"),
    ]


def content(envelope: ReplyEnvelope, rendered: RenderedReply, facts: ReplyFacts) -> EmailContentTypeDef:
    """SESv2 ``Content``: the plain text, the HTML part when there is one, and the threading headers."""
    body: BodyTypeDef = {"Text": {"Data": rendered.text, "Charset": "UTF-8"}}
    if rendered.html is not None:
        body["Html"] = {"Data": rendered.html, "Charset": "UTF-8"}
    return {
        "Simple": {
            "Subject": {"Data": envelope.subject, "Charset": "UTF-8"},
            "Body": body,
            "Headers": [{"Name": name, "Value": value} for name, value in threading_headers(envelope, facts)],
        }
    }


def mime(envelope: ReplyEnvelope, rendered: RenderedReply, facts: ReplyFacts) -> bytes:
    """The whole message, for replies that carry files: ``multipart/mixed`` around the text (and, when there
    is one, ``multipart/alternative`` with the HTML and its inline images as ``multipart/related``)."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = envelope.fromAddress
    message["To"] = envelope.to
    message["Reply-To"] = envelope.replyTo
    message["Subject"] = envelope.subject
    for name, value in threading_headers(envelope, facts):
        message[name] = value
    message.set_content(rendered.text.replace("\r\n", "\n"), charset="utf-8")
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html", charset="utf-8")
        html_part = next(part for part in message.walk() if part.get_content_type() == "text/html")
        assert isinstance(html_part, EmailMessage)
        for image in rendered.images:
            maintype, subtype = image.content_type.split("/", 1)
            html_part.add_related(
                image.data, maintype=maintype, subtype=subtype, cid=f"<{image.content_id}>", filename=image.filename
            )
    for attached in rendered.attachments:
        maintype, subtype = attached.content_type.split(";", 1)[0].split("/", 1)
        message.add_attachment(attached.data, maintype=maintype, subtype=subtype, filename=attached.filename)
    return message.as_bytes()


def fetch_pictures(s3: S3Client | None, bucket: str, facts: ReplyFacts) -> dict[str, bytes]:
    """The screenshots the reply shows, by key. One that cannot be fetched is left out (the reply says there is
    no picture); a reply is never lost for a picture."""
    if s3 is None or facts.result is None:
        return {}
    pictures: dict[str, bytes] = {}
    keys = [key for shot in facts.result.screenshots for key in (shot.key, shot.beforeKey) if key]
    for key in keys:
        if not key.startswith(names.SCREENSHOT_PREFIX):
            continue  # only our own pictures, whatever the facts say
        try:
            pictures[key] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError):
            continue
    return pictures


def send_reply(
    sesv2: SESV2Client, request: ReplyRequest, settings: ReplySettings, s3: S3Client | None = None
) -> SentReply:
    rendered = render(request.facts, fetch_pictures(s3, settings.preview_bucket, request.facts))
    envelope = request.reply
    if rendered.images or rendered.attachments:
        response = sesv2.send_email(
            FromEmailAddress=envelope.fromAddress,
            Destination={"ToAddresses": [envelope.to]},
            Content={"Raw": {"Data": mime(envelope, rendered, request.facts)}},
        )
    else:
        response = sesv2.send_email(
            FromEmailAddress=envelope.fromAddress,
            Destination={"ToAddresses": [envelope.to]},
            ReplyToAddresses=[envelope.replyTo],
            Content=content(envelope, rendered, request.facts),
        )
    ses_id = response["MessageId"]
    return SentReply(sesMessageId=ses_id, replyMessageId=f"<{ses_id}@{settings.ses_message_id_domain}>")
