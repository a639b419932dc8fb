"""Work DLQ -> Lambda (SQS event source): fail each dead-lettered command's task token at once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from lambdas.observability import powertools
from workflows.adapters.aws import client
from workflows.dead_letters import fail_waiting_execution

logger, tracer, metrics = powertools("webordinary-dead-letters")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failed = 0
    for record in event.get("Records", []):
        logger.append_keys(correlation_id=record.get("messageId", ""))
        receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", 0))
        failed += fail_waiting_execution(client("stepfunctions"), record["body"], receive_count)
    metrics.add_metric(name="DeadLetteredCommands", unit=MetricUnit.Count, value=failed)
    logger.info("dead letters handled", extra={"records": len(event.get("Records", [])), "failedTokens": failed})
    return {"batchItemFailures": []}
