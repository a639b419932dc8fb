"""S3: the raw and normalised mail, the previews, and the access logs of both."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk.parts import nag
from workflows import names


def private_bucket(
    scope: Construct,
    construct_id: str,
    *,
    lifecycle_rules: list[s3.LifecycleRule],
    object_ownership: s3.ObjectOwnership = s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    versioned: bool = False,
    server_access_logs_bucket: s3.IBucket | None = None,
    server_access_logs_prefix: str | None = None,
) -> s3.Bucket:
    """A bucket nobody outside the account reaches: public access blocked, SSE-S3, TLS-only, owner-enforced.

    SSE-S3 rather than KMS: SES's S3 action, CloudFront's origin access control and the worker all read or
    write these objects, and S3-managed keys need no key policy for any of them.
    """
    return s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        object_ownership=object_ownership,
        versioned=versioned,
        server_access_logs_bucket=server_access_logs_bucket,
        server_access_logs_prefix=server_access_logs_prefix,
        lifecycle_rules=lifecycle_rules,
        removal_policy=RemovalPolicy.RETAIN,
    )


class Storage(Construct):
    """``names.MAIL_BUCKET``, ``names.PREVIEW_BUCKET`` and the bucket their server access logs go to."""

    def __init__(self, scope: Construct, construct_id: str, *, raw_mail_retention_days: int) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = private_bucket(
            self,
            "AccessLogsBucket",
            # CloudFront standard logging writes with ACLs, so this one bucket keeps them enabled.
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))],
        )
        nag.acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log bucket itself; logging it into itself would loop.",
        )

        self.mail = private_bucket(
            self,
            names.MAIL_BUCKET.construct_id,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="mail/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="raw-mail",
                    prefix=names.RAW_MAIL_PREFIX,
                    # Raw MIME is evidence (rejected mail is kept, never dropped) but rarely read after intake.
                    # (S3 moves objects to Standard-IA no sooner than 30 days, and only before they expire.)
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(30)
                        )
                    ]
                    if raw_mail_retention_days > 30
                    else None,
                    expiration=Duration.days(raw_mail_retention_days),
                ),
                s3.LifecycleRule(id="noncurrent-versions", noncurrent_version_expiration=Duration.days(30)),
                s3.LifecycleRule(id="abort-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)),
            ],
        )

        self.previews = private_bucket(
            self,
            names.PREVIEW_BUCKET.construct_id,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="previews/",
            lifecycle_rules=[
                s3.LifecycleRule(id="abort-uploads", abort_incomplete_multipart_upload_after=Duration.days(1))
            ],
        )
