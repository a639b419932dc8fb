"""Powertools singletons shared by the Lambda handlers: structured JSON logs, X-Ray traces and CloudWatch
metrics (EMF). Tracing switches itself off outside Lambda; metrics are written to stdout, which Lambda sends
to CloudWatch (the embedded stack sends it to the stack's log folder)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

NAMESPACE = "WebOrdinary"


def powertools(service: str) -> tuple[Logger, Tracer, Metrics]:
    return Logger(service=service), Tracer(service=service), Metrics(namespace=NAMESPACE, service=service)
