"""SES receiving: store the raw MIME in the mail bucket, then invoke the inbound handler (``lambdas/inbound``).

The order matters: the handler reads ``inbound/{SES message id}``, which the S3 action has written by the time
the Lambda action runs.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from aws_cdk import aws_ses_actions as ses_actions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.parts import nag
from cdk.parts.functions import LambdaKit
from cdk.parts.messaging import DEAD_LETTER_RETENTION, secure_queue, terminal_dead_letter_queue
from cdk.parts.state import State
from workflows import names
from workflows.attachments import ATTACHMENT_PREFIX
from workflows.settings import InboundSettings

INBOUND_HANDLER = "lambdas.inbound.handler.handler"
HANDLER_WRITE_PREFIXES = (names.MESSAGE_PREFIX, ATTACHMENT_PREFIX)


def inbound_environment(
    *, inbound_domain: str, mail_bucket: s3.IBucket, state_machine: sfn.IStateMachine, state: State
) -> dict[str, str]:
    """The handler's environment, keyed by the variables ``InboundSettings`` and ``Tables`` read."""
    var = InboundSettings.env_map()
    return {
        var["inbound_domain"]: inbound_domain,
        var["mail_bucket"]: mail_bucket.bucket_name,
        var["raw_mail_prefix"]: names.RAW_MAIL_PREFIX,
        var["state_machine_arn"]: state_machine.state_machine_arn,
        var["reply_from_name"]: "WebOrdinary",
        **state.environment,
    }


class Intake(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kit: LambdaKit,
        inbound_domain: str,
        mail_bucket: s3.IBucket,
        state: State,
        state_machine: sfn.IStateMachine,
        sender_identity_arn: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        # SES invokes the handler asynchronously; after Lambda's own retries the event lands here, with the raw
        # mail still in S3, so nothing is lost and the message can be redriven.
        self.dead_letter_queue = secure_queue(self, "HandlerDeadLetterQueue", retention_period=DEAD_LETTER_RETENTION)
        terminal_dead_letter_queue(self.dead_letter_queue)
        self.handler = kit.function(
            self,
            "InboundHandler",
            handler=INBOUND_HANDLER,
            service="webordinary-inbound",
            description="WebOrdinary: SES receipt -> parse, authenticate, record, StartExecution",
            environment=inbound_environment(
                inbound_domain=inbound_domain, mail_bucket=mail_bucket, state_machine=state_machine, state=state
            ),
            log_retention=log_retention,
            timeout=Duration.seconds(60),
            memory_mib=512,
            dead_letter_queue=self.dead_letter_queue,
        )
        self._grant(mail_bucket, state, state_machine, sender_identity_arn)

        # --- SES receipt rule set ------------------------------------------------------------------------
        self.rule_set = ses.ReceiptRuleSet(self, "ReceiptRuleSet")
        self.rule = self.rule_set.add_rule(
            "Inbound",
            recipients=[inbound_domain],  # the whole domain: {project}@ and {project}+{thread}@ alike
            scan_enabled=True,
            # Mail from servers without STARTTLS still arrives (and is recorded) rather than bouncing.
            tls_policy=ses.TlsPolicy.OPTIONAL,
            actions=[
                ses_actions.S3(bucket=mail_bucket, object_key_prefix=names.RAW_MAIL_PREFIX),
                ses_actions.Lambda(function=self.handler, invocation_type=ses_actions.LambdaInvocationType.EVENT),
            ],
        )

    def _grant(
        self, mail_bucket: s3.IBucket, state: State, state_machine: sfn.IStateMachine, sender_identity_arn: str
    ) -> None:
        """Exactly what ``workflows/intake.py`` calls, on the resources it calls them on."""
        role = self.handler.role
        assert role is not None
        statements = [
            iam.PolicyStatement(
                sid="ReadRawMail",
                actions=["s3:GetObject"],
                resources=[mail_bucket.arn_for_objects(f"{names.RAW_MAIL_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="WriteMessagesAndAttachments",
                actions=["s3:PutObject"],
                resources=[mail_bucket.arn_for_objects(f"{prefix}*") for prefix in HANDLER_WRITE_PREFIXES],
            ),
            iam.PolicyStatement(
                sid="ReadProjectsAndThreads",
                actions=["dynamodb:GetItem"],
                resources=[state.table(spec).table_arn for spec in (names.PROJECTS_TABLE, names.THREADS_TABLE)],
            ),
            iam.PolicyStatement(
                sid="IntakeDecisions",
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[state.table(names.MESSAGES_TABLE).table_arn],
            ),
            # workflows/adapters/eventlog.py: append, read a stream back.
            iam.PolicyStatement(
                sid="EventLog",
                actions=["dynamodb:PutItem", "dynamodb:Query"],
                resources=[
                    state.table(names.EVENTS_TABLE).table_arn,
                    f"{state.table(names.EVENTS_TABLE).table_arn}/index/{names.EVENTS_TABLE.local_indexes[0].name}",
                ],
            ),
            iam.PolicyStatement(
                sid="StartWorkflow", actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]
            ),
            # The one polite refusal to a sender who is not on a project's allow-list.
            iam.PolicyStatement(sid="SendRefusal", actions=["ses:SendEmail"], resources=[sender_identity_arn]),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5",
            "The handler reads raw mail under inbound/ and writes normalised messages under messages/ and "
            "content-addressed attachments under attachments/: one object per SES message id or content hash, so "
            "only the prefix is known.",
            applies_to=[nag.objects_finding(mail_bucket, names.RAW_MAIL_PREFIX)]
            + [nag.objects_finding(mail_bucket, prefix) for prefix in HANDLER_WRITE_PREFIXES],
        )
