"""The operators' view: one CloudWatch dashboard, the alarms that page, and the SNS topic they page through.

Command outcomes are counted from the facts the workflow records (the events table's stream, counted by the
event-metrics Lambda: ``cdk/parts/event_metrics.py``), never from entries into ASL states, so the dashboard
counts commands, not just executions, and survives the workflow's states being merged or renamed. Task
timeouts come from the workflow's own log (level ALL).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.parts import nag
from cdk.parts.event_metrics import EventMetrics
from cdk.parts.functions import METRICS_NAMESPACE
from workflows import event_metrics as event_metrics_module
from workflows import names
from workflows.events import EventType

FIVE_MINUTES = Duration.minutes(5)
# A message's execution normally ends in minutes; three quiet hours with mail arriving means something is wrong.
NO_SUCCESS_PERIOD = Duration.hours(1)
NO_SUCCESS_PERIODS = 3
# The claim queue is answered within seconds by an idle warm worker; older requests mean the pool is gone or busy.
CLAIM_AGE_LIMIT_SECONDS = 120


# Command outcomes on the dashboard: the counts of these recorded events (workflows/event_metrics.py), labelled.
COMMAND_OUTCOMES: tuple[tuple[str, str], ...] = tuple(
    (event_metrics_module.METRIC_BY_EVENT[event], label)
    for event, label in (
        (EventType.COMMAND_SUCCEEDED, "Succeeded"),
        (EventType.COMMAND_FAILED, "Failed"),
        (EventType.COMMAND_INTERRUPTED, "Interrupted"),
        (EventType.COMMAND_RETRIED, "Retried"),
        (EventType.COMMAND_DEAD_LETTERED, "Dead-lettered"),
        (EventType.WORKER_LOST, "Workers lost"),
    )
)


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alert_email: str | None,
        state_machine: sfn.StateMachine,
        workflow_logs: logs.ILogGroup,
        event_metrics: EventMetrics,
        inbound_handler: lambda_.Function,
        dead_letter_consumer: lambda_.Function,
        claim_queue: sqs.Queue,
        work_dlq: sqs.Queue,
        parked_dead_letters: Mapping[str, sqs.Queue],
        cluster: ecs.Cluster,
        warm_pool: ecs.FargateService,
    ) -> None:
        super().__init__(scope, construct_id)
        # --- where alarms go -----------------------------------------------------------------------------
        # CloudWatch can publish to an encrypted topic only with a customer managed key that lets it in.
        self.alert_key = kms.Key(self, "AlertKey", enable_key_rotation=True, description="WebOrdinary alarm topic")
        self.alert_key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(
            self, "Alerts", display_name="WebOrdinary alerts", master_key=self.alert_key, enforce_ssl=True
        )
        if alert_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alert_email))
            nag.acknowledge(
                self.topic,
                "Serverless-SNSRedrivePolicy",
                "The only subscription is the operators' alert email; an undeliverable alert parked in a queue "
                "nobody reads helps no one, and SNS's delivery-failure metrics show it instead.",
            )
        alarm_action = cloudwatch_actions.SnsAction(self.topic)

        # --- metrics: facts counted from the events table's stream, timeouts from the workflow's log --------
        outcome_metrics = {
            name: event_metrics.metric(name, label=label, period=FIVE_MINUTES) for name, label in COMMAND_OUTCOMES
        }
        logs.MetricFilter(
            self,
            "TaskTimeoutsFilter",
            log_group=workflow_logs,
            metric_namespace=METRICS_NAMESPACE,
            metric_name="TaskTimeouts",
            filter_pattern=logs.FilterPattern.string_value("$.type", "=", "TaskTimedOut"),
            metric_value="1",
        )
        task_timeouts = _count("TaskTimeouts", label="Task timeouts (incl. claim misses)")
        command_timeouts = event_metrics.metric(
            event_metrics_module.COMMAND_TIMEOUTS, label="Commands lost to a timeout", period=FIVE_MINUTES
        )
        unreadable_events = event_metrics.metric(
            event_metrics_module.UNREADABLE_EVENTS, label="Unreadable events", period=FIVE_MINUTES
        )

        # --- alarms --------------------------------------------------------------------------------------
        self.alarms: list[cloudwatch.Alarm] = []

        def alarm(construct_id: str, description: str, metric: cloudwatch.IMetric, threshold: float = 1) -> None:
            created = cloudwatch.Alarm(
                self,
                construct_id,
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(alarm_action)
            created.add_ok_action(alarm_action)
            self.alarms.append(created)

        for name, queue in parked_dead_letters.items():
            alarm(
                f"{name}NotEmpty",
                f"A message is waiting in the {name} queue: something was dead-lettered and needs a look.",
                queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=FIVE_MINUTES),
            )
        # The consumer drains the work DLQ at once, so "visible" would rarely show it: count what it receives.
        alarm(
            "WorkDeadLetterReceived",
            "A command reached the work dead-letter queue (a worker could not take it).",
            work_dlq.metric_number_of_messages_received(statistic="Sum", period=FIVE_MINUTES),
        )
        alarm(
            "ExecutionsFailed",
            "A message workflow execution failed (see the Step Functions console).",
            state_machine.metric_failed(statistic="Sum", period=FIVE_MINUTES),
        )
        alarm(
            "ExecutionsTimedOut",
            "A message workflow execution hit its overall timeout.",
            state_machine.metric_timed_out(statistic="Sum", period=FIVE_MINUTES),
        )
        alarm(
            "CommandTimeouts",
            "A command was lost to a timeout: its worker stopped sending heartbeats or ran past its limit.",
            command_timeouts,
        )
        alarm(
            "UnreadableEvents",
            "An event was recorded that no event model reads: a writer and workflows/events.py have drifted apart.",
            unreadable_events,
        )
        alarm(
            "EventMetricsFailing",
            "The event-metrics function is failing: command outcomes are not being counted.",
            event_metrics.function.metric_errors(statistic="Sum", period=FIVE_MINUTES),
        )
        alarm(
            "ClaimQueueAge",
            "Claim requests wait unanswered: the warm pool is down or saturated.",
            claim_queue.metric_approximate_age_of_oldest_message(statistic="Maximum", period=FIVE_MINUTES),
            threshold=CLAIM_AGE_LIMIT_SECONDS,
        )
        alarm(
            "DeadLetterConsumerFailing",
            "The dead-letter consumer is failing: dead-lettered commands are not being reported.",
            dead_letter_consumer.metric_errors(statistic="Sum", period=FIVE_MINUTES),
        )
        alarm(
            "InboundHandlerErrors",
            "The inbound mail handler is failing (mail is kept in S3 and lands in its dead-letter queue).",
            inbound_handler.metric_errors(statistic="Sum", period=FIVE_MINUTES),
        )
        arrived = inbound_handler.metric_invocations(statistic="Sum", period=NO_SUCCESS_PERIOD)
        succeeded = state_machine.metric_succeeded(statistic="Sum", period=NO_SUCCESS_PERIOD)
        no_success = cloudwatch.Alarm(
            self,
            "NoSuccessfulExecutions",
            alarm_description=(
                f"Mail kept arriving for {NO_SUCCESS_PERIODS} hours and no message workflow execution succeeded."
            ),
            metric=cloudwatch.MathExpression(
                expression="IF(FILL(arrived, 0) > 0 AND FILL(succeeded, 0) == 0, 1, 0)",
                using_metrics={"arrived": arrived, "succeeded": succeeded},
                period=NO_SUCCESS_PERIOD,
                label="Mail arrived, nothing succeeded",
            ),
            threshold=1,
            evaluation_periods=NO_SUCCESS_PERIODS,
            datapoints_to_alarm=NO_SUCCESS_PERIODS,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        no_success.add_alarm_action(alarm_action)
        no_success.add_ok_action(alarm_action)
        self.alarms.append(no_success)

        # --- the dashboard -------------------------------------------------------------------------------
        running_workers = cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions_map={"ClusterName": cluster.cluster_name},
            statistic="Maximum",
            period=Duration.minutes(1),
            label="Running workers (all)",
        )
        warm_workers = cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions_map={"ClusterName": cluster.cluster_name, "ServiceName": warm_pool.service_name},
            statistic="Maximum",
            period=Duration.minutes(1),
            label="Warm pool",
        )
        # The per-pair queues exist only at run time: find them by their name prefix (dashboards only; alarms
        # cannot use SEARCH).
        work_queues = names.WORK_QUEUE_PREFIX.rstrip("-")

        def work_queue_search(metric_name: str) -> str:
            return f"SEARCH('{{AWS/SQS,QueueName}} MetricName=\"{metric_name}\" {work_queues}', 'Maximum', 300)"

        all_dead_letters = {"WorkDeadLetter": work_dlq, **parked_dead_letters}
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(24))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                width=12,
                left=[
                    state_machine.metric_started(statistic="Sum", period=FIVE_MINUTES, label="Started"),
                    state_machine.metric_succeeded(statistic="Sum", period=FIVE_MINUTES, label="Succeeded"),
                    state_machine.metric_failed(statistic="Sum", period=FIVE_MINUTES, label="Failed"),
                    state_machine.metric_timed_out(statistic="Sum", period=FIVE_MINUTES, label="Timed out"),
                    state_machine.metric_aborted(statistic="Sum", period=FIVE_MINUTES, label="Aborted"),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Commands",
                width=12,
                left=[*outcome_metrics.values(), command_timeouts, task_timeouts],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Claim queue",
                width=8,
                left=[claim_queue.metric_approximate_number_of_messages_visible(statistic="Maximum", label="Depth")],
                right=[claim_queue.metric_approximate_age_of_oldest_message(statistic="Maximum", label="Oldest (s)")],
            ),
            cloudwatch.GraphWidget(
                title="Work queues (per project+user)",
                width=8,
                left=[
                    cloudwatch.MathExpression(
                        expression=work_queue_search("ApproximateNumberOfMessagesVisible"),
                        label="Depth",
                        period=FIVE_MINUTES,
                    )
                ],
                right=[
                    cloudwatch.MathExpression(
                        expression=work_queue_search("ApproximateAgeOfOldestMessage"),
                        label="Oldest (s)",
                        period=FIVE_MINUTES,
                    )
                ],
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                width=8,
                left=[
                    queue.metric_approximate_number_of_messages_visible(statistic="Maximum", label=name)
                    for name, queue in all_dead_letters.items()
                ],
                right=[work_dlq.metric_number_of_messages_received(statistic="Sum", label="Work DLQ received")],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Workers", width=8, left=[running_workers, warm_workers]),
            cloudwatch.GraphWidget(
                title="Inbound handler",
                width=8,
                left=[
                    inbound_handler.metric_invocations(statistic="Sum", label="Invocations"),
                    inbound_handler.metric_errors(statistic="Sum", label="Errors"),
                    inbound_handler.metric_throttles(statistic="Sum", label="Throttles"),
                ],
                right=[
                    inbound_handler.metric_duration(statistic="p50", label="Duration p50 (ms)"),
                    inbound_handler.metric_duration(statistic="p99", label="Duration p99 (ms)"),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter consumer",
                width=8,
                left=[
                    dead_letter_consumer.metric_invocations(statistic="Sum", label="Invocations"),
                    dead_letter_consumer.metric_errors(statistic="Sum", label="Errors"),
                ],
                right=[dead_letter_consumer.metric_duration(statistic="p99", label="Duration p99 (ms)")],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", width=24, alarms=list(self.alarms)),
        )


def _count(metric_name: str, *, label: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE, metric_name=metric_name, statistic="Sum", period=FIVE_MINUTES, label=label
    )
