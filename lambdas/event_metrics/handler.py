"""Events table stream (INSERT records) -> one CloudWatch count per metric of :mod:`workflows.event_metrics`,
published as EMF by Powertools."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from lambdas.observability import powertools
from workflows.event_metrics import SERVICE, tally

logger, tracer, metrics = powertools(SERVICE)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records", [])
    counted = tally(records)
    for name, value in sorted(counted.counts.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if counted.unreadable:
        logger.warning("events no model reads", extra={"events": counted.unreadable})
    logger.info("events counted", extra={"records": len(records), "counts": dict(counted.counts)})
    return {"counts": dict(counted.counts)}
