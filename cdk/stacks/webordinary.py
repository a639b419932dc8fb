"""WebOrdinary on AWS: everything the embedded stack (workflows/local/stack.py) emulates, in one stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ses as ses
from constructs import Construct

from cdk.config import DeployConfig
from cdk.parts.dead_letters import DeadLetters
from cdk.parts.event_metrics import EventMetrics
from cdk.parts.functions import LambdaKit
from cdk.parts.intake import Intake
from cdk.parts.messaging import Messaging
from cdk.parts.network import Network
from cdk.parts.observability import Observability
from cdk.parts.previews import Previews
from cdk.parts.reaper import Reaper
from cdk.parts.replies import Replies
from cdk.parts.state import State
from cdk.parts.storage import Storage
from cdk.parts.workers import Workers
from cdk.parts.workflow import Workflow, ses_message_id_domain
from workflows import names


class WebOrdinaryStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        log_retention = retention(config.log_retention_days)

        self.storage = Storage(self, "Storage", raw_mail_retention_days=config.raw_mail_retention_days)
        self.state = State(self, "State")
        self.messaging = Messaging(self, "Messaging")
        self.network = Network(self, "Network", nat_gateways=config.nat_gateways, log_retention=log_retention)
        kit = LambdaKit(self, "Lambdas", powertools_layer_version=config.powertools_layer_version)
        self.previews = Previews(
            self,
            "Previews",
            bucket=self.storage.previews,
            access_logs=self.storage.access_logs,
            domain=config.preview_domain,
            certificate_arn=config.preview_certificate_arn,
            base_url=config.preview_base_url,
            kit=kit,
            log_retention=log_retention,
        )
        self.workers = Workers(
            self,
            "Workers",
            network=self.network,
            state=self.state,
            messaging=self.messaging,
            mail_bucket=self.storage.mail,
            preview_bucket=self.storage.previews,
            preview_base_url=self.previews.base_url,
            preview_origin=self.previews.origin_template,
            site_origin=self.previews.site_template,
            cpu=config.worker_cpu,
            memory_mib=config.worker_memory_mib,
            warm_pool_size=config.warm_pool_size,
            log_retention=log_retention,
        )
        sender_identity_arn = self.format_arn(service="ses", resource="identity", resource_name=config.sender_identity)
        self.replies = Replies(
            self,
            "Replies",
            kit=kit,
            sender_identity_arn=sender_identity_arn,
            ses_message_id_domain=ses_message_id_domain(self),
            preview_bucket=self.storage.previews,
            log_retention=log_retention,
        )
        self.workflow = Workflow(
            self,
            "Workflow",
            state=self.state,
            messaging=self.messaging,
            network=self.network,
            workers=self.workers,
            reply_function=self.replies.function,
            tuning=config.tuning,
            sender_identity_arn=sender_identity_arn,
            log_retention=log_retention,
        )
        self.workers.grant_task_response(self.workflow.state_machine)

        self.intake = Intake(
            self,
            "Intake",
            kit=kit,
            inbound_domain=config.inbound_domain,
            mail_bucket=self.storage.mail,
            state=self.state,
            state_machine=self.workflow.state_machine,
            sender_identity_arn=self.workflow.sender_identity_arn,
            log_retention=log_retention,
        )
        self.dead_letters = DeadLetters(
            self,
            "DeadLetters",
            kit=kit,
            work_dlq=self.messaging.work_dlq,
            state_machine=self.workflow.state_machine,
            log_retention=log_retention,
        )
        self.reaper = Reaper(
            self,
            "Reaper",
            kit=kit,
            cluster=self.workers.cluster,
            state=self.state,
            state_machine=self.workflow.state_machine,
            log_retention=log_retention,
        )
        self.event_metrics = EventMetrics(self, "EventMetrics", kit=kit, state=self.state, log_retention=log_retention)
        self.observability = Observability(
            self,
            "Observability",
            alert_email=config.alert_email,
            state_machine=self.workflow.state_machine,
            workflow_logs=self.workflow.log_group,
            event_metrics=self.event_metrics,
            inbound_handler=self.intake.handler,
            dead_letter_consumer=self.dead_letters.consumer,
            claim_queue=self.messaging.claim_queue,
            work_dlq=self.messaging.work_dlq,
            parked_dead_letters={
                "DeadLetterStore": self.messaging.dead_letters,
                "ClaimDeadLetter": self.messaging.claim_dlq,
                "WorkDeadLetterFailure": self.messaging.work_dlq_failures,
                "HandlerDeadLetter": self.intake.dead_letter_queue,
                "ReaperDeadLetter": self.reaper.dead_letter_queue,
                "EventMetricsFailure": self.event_metrics.failure_queue,
            },
            cluster=self.workers.cluster,
            warm_pool=self.workers.warm_pool,
        )
        if config.create_sender_identity:
            identity = ses.EmailIdentity(self, "SenderIdentity", identity=ses.Identity.domain(config.sender_identity))
            for index, (name, value) in enumerate(
                (
                    (identity.dkim_dns_token_name1, identity.dkim_dns_token_value1),
                    (identity.dkim_dns_token_name2, identity.dkim_dns_token_value2),
                    (identity.dkim_dns_token_name3, identity.dkim_dns_token_value3),
                ),
                start=1,
            ):
                CfnOutput(self, f"SenderDkimRecord{index}", value=f"{name} CNAME {value}")
        self._outputs()

    def _outputs(self) -> None:
        CfnOutput(
            self,
            "ReceiptRuleSetName",
            value=self.intake.rule_set.receipt_rule_set_name,
            description="Activate it: aws ses set-active-receipt-rule-set --rule-set-name <this>",
        )
        CfnOutput(self, "StateMachineArn", value=self.workflow.state_machine.state_machine_arn)
        CfnOutput(self, "PreviewBaseUrl", value=self.previews.base_url)
        CfnOutput(self, "PreviewDistributionDomain", value=self.previews.distribution.distribution_domain_name)
        CfnOutput(
            self,
            "DeadLetterQueueUrl",
            value=self.messaging.dead_letters.queue_url,
            description=f"Commands the workflow gave up on ({names.DEAD_LETTER_QUEUE.env} for webordinary redrive)",
        )
        CfnOutput(self, "MailBucketName", value=self.storage.mail.bucket_name)
        CfnOutput(self, "ProjectsTableName", value=self.state.table(names.PROJECTS_TABLE).table_name)
        CfnOutput(self, "GitTokenSecretArn", value=self.workers.git_token.secret_arn)
        CfnOutput(self, "AgentApiKeySecretArn", value=self.workers.agent_api_key.secret_arn)
        CfnOutput(self, "AlertTopicArn", value=self.observability.topic.topic_arn)
        CfnOutput(
            self,
            "InboundMxRecord",
            value=f"{self.config.inbound_domain} MX 10 inbound-smtp.{self.region}.amazonaws.com",
        )


# CloudWatch Logs accepts only these retention periods (days), in RetentionDays' declaration order.
# fmt: off
_RETENTION_PERIODS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365,
    400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
# fmt: on


def retention(days: int) -> logs.RetentionDays:
    """The shortest allowed retention that keeps logs at least ``days`` days."""
    finite = [member for member in logs.RetentionDays if member is not logs.RetentionDays.INFINITE]
    for period, member in zip(_RETENTION_PERIODS, finite, strict=True):
        if period >= days:
            return member
    return finite[-1]
