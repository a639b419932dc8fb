"""Replies: the reply Lambda that the workflow's ``Send reply`` state invokes.

It puts the facts the workflow composed into the owner's words (``workflows/replies.py``) and sends them with
SESv2 in the owner's mail thread (``workflows/adapters/reply_mail.py``). Step Functions retries and catches it like any
Task; synchronous invocation, so no event-invoke dead-letter queue: a failed reply ends the execution in
``Reply failed``, which the dashboards alarm on.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk.parts import nag
from cdk.parts.functions import LambdaKit
from workflows import names
from workflows.settings import ReplySettings

# Below the workflow's Send reply TimeoutSeconds (30), so a slow SES call fails in the function, not the state.
TIMEOUT = Duration.seconds(20)


class Replies(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kit: LambdaKit,
        sender_identity_arn: str,
        ses_message_id_domain: str,
        preview_bucket: s3.IBucket,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = kit.function(
            self,
            names.REPLY_FUNCTION.construct_id,
            handler=names.REPLY_FUNCTION.handler,
            service="webordinary-reply",
            description="WebOrdinary: put a change's outcome in the owner's words and reply in their mail thread",
            environment={
                ReplySettings.env_map()["ses_message_id_domain"]: ses_message_id_domain,
                ReplySettings.env_map()["preview_bucket"]: preview_bucket.bucket_name,
            },
            log_retention=log_retention,
            timeout=TIMEOUT,
            memory_mib=256,
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["ses:SendEmail"], resources=[sender_identity_arn])
        )
        # The pictures of a change, put inline in its reply; nothing else in the bucket.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[preview_bucket.arn_for_objects(f"{names.SCREENSHOT_PREFIX}*")]
            )
        )
        nag.acknowledge(
            self.function,
            "AwsSolutions-IAM5",
            "Reads the screenshots/{project}/{commit}/ pictures the worker stores, one key per picture, known only "
            "at run time.",
            applies_to=[nag.objects_finding(preview_bucket, names.SCREENSHOT_PREFIX)],
        )
        nag.acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "Invoked synchronously by Step Functions, which retries it and routes its failure (Reply failed); "
            "a dead-letter queue only applies to asynchronous invocations.",
            children=False,
        )
