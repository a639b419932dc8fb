"""The workflow's ``Send reply`` state -> Lambda: parse the request, then
:func:`workflows.adapters.reply_mail.send_reply`.

Why a Lambda and not the SESv2 integration the workflow used before: a reply's words come from one Python
module (``workflows.replies``), and a reply with a screenshot is a MIME message with an inline image fetched
from S3, which neither a Pass state nor Step Functions' 256 KiB payload can carry.
"""

from __future__ import annotations

from typing import Any

from lambdas.observability import powertools
from workflows.adapters.aws import client
from workflows.adapters.reply_mail import ReplyRequest, send_reply
from workflows.settings import ReplySettings

logger, tracer, metrics = powertools("webordinary-reply")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ReplyRequest.model_validate(event)
    logger.append_keys(thread_id=request.facts.threadId, outcome=request.facts.outcome)
    sent = send_reply(client("sesv2"), request, ReplySettings.from_env(), s3=client("s3"))
    logger.info("reply sent", extra={"sesMessageId": sent.sesMessageId})
    return sent.model_dump()
