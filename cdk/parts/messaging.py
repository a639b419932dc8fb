"""SQS: the warm-worker claim queue and the dead-letter queues. The per project+user work queues are created at
run time by the owning worker (``names.work_queue_name``) with a redrive policy to ``names.WORK_DLQ``."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.parts import nag
from workflows import names

# The worker creates each work queue with MessageRetentionPeriod 86400 s (container/worker/runtime.py); a DLQ
# must keep a message longer than its source did, or the redriven copy could expire before anyone looks.
# (For standard queues SQS keeps a message's original enqueue time when it moves it to a DLQ.)
WORK_QUEUE_RETENTION = Duration.days(1)
WORK_DLQ_RETENTION = Duration.days(7)
DEAD_LETTER_RETENTION = Duration.days(14)  # the terminal dead-letter queues: the maximum SQS allows
# The dead-letter consumer gets this many tries at a message before it is parked for a person to look at.
WORK_DLQ_MAX_RECEIVE_COUNT = 5
# A claim request is answerable only while its execution waits (ClaimTimeoutSeconds, 5 s by default); after
# that a warm worker would claim a pair nobody asked for. Minutes of slack, not the 4-day default.
CLAIM_RETENTION = Duration.minutes(5)
CLAIM_MAX_RECEIVE_COUNT = 3
# Six times the dead-letter consumer's timeout (dead_letters.CONSUMER_TIMEOUT), as AWS advises for event sources.
WORK_DLQ_VISIBILITY = Duration.minutes(3)


def secure_queue(
    scope: Construct,
    construct_id: str,
    *,
    retention_period: Duration,
    visibility_timeout: Duration | None = None,
    dead_letter_queue: sqs.DeadLetterQueue | None = None,
) -> sqs.Queue:
    """SSE with SQS-managed keys and a policy that denies any request not made over TLS."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=retention_period,
        visibility_timeout=visibility_timeout,
        dead_letter_queue=dead_letter_queue,
    )


def terminal_dead_letter_queue(queue: sqs.Queue) -> None:
    """Mark a queue as the end of a redrive chain: messages wait here for a person (and the DLQ alarm fires)."""
    nag.acknowledge(
        queue,
        "Serverless-SQSRedrivePolicy",
        "A terminal dead-letter queue: nothing consumes it, so there is nothing to redrive from; its messages wait "
        "for an operator and the dead-letter alarm fires on the first one.",
    )


class Messaging(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # Where the dead-letter consumer's own failures go, so a poison message cannot loop for days.
        self.work_dlq_failures = secure_queue(
            self, "WorkDeadLetterFailureQueue", retention_period=DEAD_LETTER_RETENTION
        )
        # The redrive target of every per-pair work queue (the worker names it in each queue's RedrivePolicy).
        self.work_dlq = secure_queue(
            self,
            names.WORK_DLQ.construct_id,
            retention_period=WORK_DLQ_RETENTION,
            visibility_timeout=WORK_DLQ_VISIBILITY,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.work_dlq_failures, max_receive_count=WORK_DLQ_MAX_RECEIVE_COUNT
            ),
        )
        self.claim_dlq = secure_queue(self, "ClaimDeadLetterQueue", retention_period=DEAD_LETTER_RETENTION)
        self.claim_queue = secure_queue(
            self,
            names.CLAIM_QUEUE.construct_id,
            retention_period=CLAIM_RETENTION,
            visibility_timeout=Duration.seconds(30),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.claim_dlq, max_receive_count=CLAIM_MAX_RECEIVE_COUNT),
        )

        # Commands the workflow gave up on, with their context ("Dead-letter the command" in the ASL). Nothing
        # consumes it: an operator reads it and `webordinary redrive` replays what is worth replaying.
        self.dead_letters = secure_queue(
            self, names.DEAD_LETTER_QUEUE.construct_id, retention_period=DEAD_LETTER_RETENTION
        )
        nag.acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This is the workflow's own dead-letter store: the state machine writes a command it gave up on here "
            "(it is not an SQS redrive target, so cdk-nag cannot tell it is a dead-letter queue).",
        )
        for terminal in (self.work_dlq_failures, self.claim_dlq, self.dead_letters):
            terminal_dead_letter_queue(terminal)

    @property
    def queues_by_placeholder(self) -> dict[str, sqs.Queue]:
        """QueueSpec.placeholder -> queue, for the ASL's ``${...QueueUrl}``."""
        return {
            names.CLAIM_QUEUE.placeholder: self.claim_queue,
            names.WORK_DLQ.placeholder: self.work_dlq,
            names.DEAD_LETTER_QUEUE.placeholder: self.dead_letters,
        }

    @property
    def work_queue_arn_pattern(self) -> str:
        """Every per-pair work queue (``names.WORK_QUEUE_PREFIX`` + pair): the one queue wildcard in the app."""
        stack = Stack.of(self)
        return stack.format_arn(service="sqs", resource=f"{names.WORK_QUEUE_PREFIX}*")
