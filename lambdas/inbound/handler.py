"""SES receipt rule -> Lambda action (after the S3 action stored the raw MIME): parse, then hand each record
to :func:`workflows.intake.receive`. Nothing else happens here.

Cold start matters (every first mail after a quiet spell pays it), so this module imports only what every
invocation needs; MIME parsing, reply detection and attachment handling are imported by intake on the paths
that use them (``workflows/local/bench_intake.py`` measures the import).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from lambdas.observability import powertools
from workflows import intake
from workflows.adapters.aws import client
from workflows.settings import InboundSettings, Tables

logger, tracer, metrics = powertools("webordinary-inbound")


def deps() -> intake.IntakeDeps:
    return intake.IntakeDeps.on_dynamodb(
        s3=client("s3"),
        dynamodb=client("dynamodb"),
        stepfunctions=client("stepfunctions"),
        settings=InboundSettings.from_env(),
        tables=Tables.from_env(),
        sesv2=lambda: client("sesv2"),  # only refusals and notices send mail from here
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ses_event = intake.SesEvent.model_validate(event)
    dependencies = deps()
    outcomes = []
    for record in ses_event.Records:
        logger.append_keys(correlation_id=record.ses.mail.messageId)
        outcome = intake.receive(dependencies, record)
        logger.info("intake decision", extra={"outcome": outcome.model_dump(mode="json")})
        if outcome.accepted:
            metrics.add_metric(name="MessagesAccepted", unit=MetricUnit.Count, value=1)
        else:
            metrics.add_metric(name="MessagesRejected", unit=MetricUnit.Count, value=1)
        outcomes.append(outcome.model_dump(mode="json"))
    return {"outcomes": outcomes}
