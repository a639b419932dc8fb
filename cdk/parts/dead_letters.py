"""The dead-letter consumer: a command that reached ``names.WORK_DLQ`` fails its waiting execution.

Each message body is the work item the workflow sent (``{"taskToken": ..., "command": {...}}``); the handler
(``lambdas/dead_letter/handler.py``) answers the token with SendTaskFailure so the workflow records the command
as dead-lettered and tells the user, instead of waiting for its heartbeat to time out.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.parts import nag
from cdk.parts.functions import LambdaKit
from workflows import names

DEAD_LETTER_HANDLER = "lambdas.dead_letter.handler.handler"
# AWS's rule for SQS event sources: the queue's visibility timeout is at least six times the function's, so a
# batch that is retried inside Lambda is not delivered a second time meanwhile (messaging.WORK_DLQ_VISIBILITY).
CONSUMER_TIMEOUT = Duration.seconds(30)


class DeadLetters(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kit: LambdaKit,
        work_dlq: sqs.Queue,
        state_machine: sfn.IStateMachine,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.consumer = kit.function(
            self,
            "DeadLetterConsumer",
            handler=DEAD_LETTER_HANDLER,
            service="webordinary-dead-letters",  # as lambdas/dead_letter/handler.py logs it
            description="WebOrdinary: fail the execution waiting on a dead-lettered command",
            # It needs no names (the token in each message says which execution to fail); these make its logs
            # and a manual replay self-explanatory.
            environment={
                names.WORK_DLQ.env: work_dlq.queue_url,
                names.MESSAGE_WORKFLOW.env: state_machine.state_machine_arn,
            },
            log_retention=log_retention,
            timeout=CONSUMER_TIMEOUT,
            memory_mib=256,
        )
        self.consumer.add_event_source(
            event_sources.SqsEventSource(work_dlq, batch_size=10, report_batch_item_failures=True)
        )
        # Failing the waiting task is all it does: no SendTaskSuccess, no heartbeats.
        state_machine.grant(self.consumer, "states:SendTaskFailure")
        nag.acknowledge(
            self.consumer,
            "Serverless-LambdaEventSourceMappingDestination",
            "Lambda supports on-failure destinations only for stream and Kafka sources; for this SQS source the "
            "queue's own redrive policy (to WorkDeadLetterFailureQueue) catches what the consumer cannot handle.",
        )
        nag.acknowledge(
            self.consumer,
            "Serverless-LambdaDLQ",
            "The consumer is invoked by an SQS event source mapping, not asynchronously, so a Lambda DLQ would never "
            "receive anything: a message it keeps failing on moves to WorkDeadLetterFailureQueue (its source's "
            "redrive target) and that queue's alarm fires.",
            children=False,
        )
