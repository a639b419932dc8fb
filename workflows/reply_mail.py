"""Sending a reply to a change: the words from :mod:`workflows.replies`, the addressing and threading that
intake prepared (:class:`~workflows.models.ReplyEnvelope`), one SESv2 ``SendEmail``.

The workflow's ``Send reply`` state invokes this (through ``lambdas/reply``) after ``Claim the reply`` made sure
it is the execution's only reply; what it returns, the reply's Message-ID, is recorded with ``ReplySent`` so an
answer to the reply finds its thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from workflows.models import ReplyEnvelope
from workflows.replies import RenderedReply, ReplyFacts, render
from workflows.settings import ReplySettings

if TYPE_CHECKING:
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


def content(envelope: ReplyEnvelope, rendered: RenderedReply, facts: ReplyFacts) -> EmailContentTypeDef:
    """SESv2 ``Content``: the plain text, the HTML part when there is one, and the threading headers."""
    body: BodyTypeDef = {"Text": {"Data": rendered.text, "Charset": "UTF-8"}}
    if rendered.html is not None:
        body["Html"] = {"Data": rendered.html, "Charset": "UTF-8"}
    return {
        "Simple": {
            "Subject": {"Data": envelope.subject, "Charset": "UTF-8"},
            "Body": body,
            "Headers": [
                {"Name": "In-Reply-To", "Value": envelope.inReplyTo},
                {"Name": "References", "Value": envelope.references},
                {"Name": "X-WebOrdinary-Thread", "Value": facts.threadId},
                {"Name": "X-WebOrdinary-Outcome", "Value": facts.outcome},
                {"Name": "Auto-Submitted", "Value": "auto-replied"},
            ],
        }
    }


def send_reply(sesv2: SESV2Client, request: ReplyRequest, settings: ReplySettings) -> SentReply:
    rendered = render(request.facts)
    if rendered.images:
        # Inline images need a raw MIME message (multipart/related); nothing renders one yet.
        raise NotImplementedError("inline images are not sent yet")
    envelope = request.reply
    response = sesv2.send_email(
        FromEmailAddress=envelope.fromAddress,
        Destination={"ToAddresses": [envelope.to]},
        ReplyToAddresses=[envelope.replyTo],
        Content=content(envelope, rendered, request.facts),
    )
    ses_id = response["MessageId"]
    return SentReply(sesMessageId=ses_id, replyMessageId=f"<{ses_id}@{settings.ses_message_id_domain}>")
