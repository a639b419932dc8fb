"""Work DLQ -> Lambda (SQS event source): fail each dead-lettered command's task token at once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from workflows.aws import client
from workflows.dead_letters import fail_waiting_execution

logger = Logger(service="webordinary-dead-letters")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failed = 0
    for record in event.get("Records", []):
        receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", 0))
        failed += fail_waiting_execution(client("stepfunctions"), record["body"], receive_count)
    logger.info("dead letters handled", extra={"records": len(event.get("Records", [])), "failedTokens": failed})
    return {"batchItemFailures": []}
