"""Event metrics: the events table's stream -> the event-metrics Lambda -> one CloudWatch count per fact.

Dashboards and alarms (``observability.py``) count recorded events, never entries into ASL states, so the
ASL can merge or rename states without zeroing a graph. The Lambda (``lambdas/event_metrics/handler.py``) maps
each new event to its metric (``workflows/event_metrics.py``) and publishes the counts as EMF; it needs no
table access, only the stream.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk.parts import nag
from cdk.parts.functions import METRICS_NAMESPACE, LambdaKit
from cdk.parts.messaging import DEAD_LETTER_RETENTION, secure_queue, terminal_dead_letter_queue
from cdk.parts.state import State
from workflows import event_metrics, names

EVENT_METRICS_HANDLER = "lambdas.event_metrics.handler.handler"
# A batch is a few events; waiting a few seconds to fill it costs nothing for five-minute alarm periods.
BATCH_SIZE = 100
BATCH_WINDOW = Duration.seconds(5)
# The handler never fails on an event it cannot read (it counts it as unreadable); a failing batch is a bug or
# an outage, split in halves until the culprit is alone, then its position parked on the failure queue.
RETRY_ATTEMPTS = 3
MAX_RECORD_AGE = Duration.hours(6)


class EventMetrics(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kit: LambdaKit,
        state: State,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        # Where Lambda records the shard positions of a batch it gave up on (the events themselves stay in the
        # table: an operator can count them again from there).
        self.failure_queue = secure_queue(self, "EventMetricsFailureQueue", retention_period=DEAD_LETTER_RETENTION)
        terminal_dead_letter_queue(self.failure_queue)
        nag.acknowledge(
            self.failure_queue,
            "AwsSolutions-SQS3",
            "This is the on-failure destination of the events-table stream mapping (a dead-letter queue that "
            "cdk-nag cannot recognise as one, because no queue redrives to it).",
        )
        self.function = kit.function(
            self,
            "EventMetrics",
            handler=EVENT_METRICS_HANDLER,
            service=event_metrics.SERVICE,  # the metrics' ``service`` dimension, as the handler logs it
            description="WebOrdinary: count each new event of the events table as a CloudWatch metric",
            environment={},
            log_retention=log_retention,
            timeout=Duration.seconds(30),
            memory_mib=256,
        )
        self.function.add_event_source(
            event_sources.DynamoEventSource(
                state.table(names.EVENTS_TABLE),
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                # Only new facts: an event is never modified, and nothing deletes one.
                filters=[lambda_.FilterCriteria.filter({"eventName": lambda_.FilterRule.is_equal("INSERT")})],
                batch_size=BATCH_SIZE,
                max_batching_window=BATCH_WINDOW,
                bisect_batch_on_error=True,
                retry_attempts=RETRY_ATTEMPTS,
                max_record_age=MAX_RECORD_AGE,
                on_failure=event_sources.SqsDlq(self.failure_queue),
            )
        )
        role = self.function.role
        assert role is not None  # LambdaKit gives every function a role of its own
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Reading a DynamoDB stream needs dynamodb:ListStreams, which supports no resource-level permissions "
            "(Resource must be *); the stream reads themselves are scoped to the events table's stream.",
            applies_to=["Resource::*"],
        )
        nag.acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "The function is invoked by a DynamoDB stream event source mapping, never asynchronously, so a Lambda "
            "DLQ would never receive anything: a batch it keeps failing on goes to the mapping's on-failure "
            "destination (EventMetricsFailureQueue), whose alarm fires.",
            children=False,
        )

    def metric(self, name: str, *, label: str, period: Duration) -> cloudwatch.Metric:
        """A count the function publishes (Powertools adds the ``service`` dimension to every metric)."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": event_metrics.SERVICE},
            statistic="Sum",
            period=period,
            label=label,
        )
