"""EventBridge "ECS Task State Change" (lastStatus STOPPED, the workers' cluster) -> free what the task held."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from lambdas.observability import powertools
from workflows.adapters.aws import client
from workflows.adapters.stores.ownership import DynamoOwnership
from workflows.reaper import reap_stopped_task
from workflows.settings import Tables

logger, tracer, metrics = powertools("webordinary-reaper")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event.get("detail", {})
    task_arn = str(detail.get("taskArn", ""))
    logger.append_keys(correlation_id=task_arn)
    if detail.get("lastStatus") != "STOPPED" or not task_arn:
        return {"released": []}
    released = reap_stopped_task(
        DynamoOwnership(client("dynamodb"), Tables.from_env().ownership),
        client("stepfunctions"),
        task_arn,
        reason=str(detail.get("stoppedReason", "")),
    )
    metrics.add_metric(name="PairsReleasedFromStoppedWorkers", unit=MetricUnit.Count, value=len(released))
    logger.info("reaped stopped worker", extra={"taskArn": task_arn, "released": released})
    return {"released": released}
