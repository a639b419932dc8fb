"""The one way this app makes a Lambda: the repository's code asset, the Powertools layer, X-Ray, JSON logs."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import assets, config
from cdk.parts import nag

RUNTIME = lambda_.Runtime.PYTHON_3_12  # must match the Powertools layer's build (config.POWERTOOLS_LAYER_NAME)
METRICS_NAMESPACE = "WebOrdinary"


class LambdaKit(Construct):
    """What every function shares: one staged code asset and one layer reference, so synth stages the code once."""

    def __init__(self, scope: Construct, construct_id: str, *, powertools_layer_version: int) -> None:
        super().__init__(scope, construct_id)
        self.code = assets.lambda_code()
        region = Stack.of(self).region
        partition = Stack.of(self).partition
        self.powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            f"arn:{partition}:lambda:{region}:{config.POWERTOOLS_LAYER_ACCOUNT}:layer:"
            f"{config.POWERTOOLS_LAYER_NAME}:{powertools_layer_version}",
        )
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=assets.dependencies_layer_code(),
            compatible_runtimes=[RUNTIME],
            description="Pure-Python packages the handlers need beyond the runtime and Powertools",
        )

    def function(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        service: str,
        description: str,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        timeout: Duration,
        memory_mib: int = 512,
        dead_letter_queue: sqs.IQueue | None = None,
        reserved_concurrency: int | None = None,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(scope, f"{construct_id}Logs", retention=log_retention)
        # Our own role instead of CDK's default (AWSLambdaBasicExecutionRole, logs on every group in the
        # account): it writes to its one log group; each part grants the rest.
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{service}: its log group, X-Ray, and what its part grants",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            scope,
            construct_id,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=handler,
            code=self.code,
            layers=[self.powertools, self.dependencies],
            description=description,
            environment={
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
            timeout=timeout,
            memory_size=memory_mib,
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            log_group=log_group,
            dead_letter_queue=dead_letter_queue,
            reserved_concurrent_executions=reserved_concurrency,
            role=role,
        )
        nag.acknowledge(
            function,
            "AwsSolutions-IAM5",
            "Active tracing adds xray:PutTraceSegments/PutTelemetryRecords, which support no resource-level "
            "permissions (Resource must be *).",
            applies_to=["Resource::*"],
        )
        nag.acknowledge(
            function,
            "AwsSolutions-L1",
            "Pinned to python3.12 because the Powertools layer (powertools + pydantic, compiled) is built per runtime; "
            "move runtime and layer name together.",
            children=False,
        )
        nag.acknowledge(
            function,
            "Serverless-LambdaLatestVersion",
            "Pinned to python3.12 because the Powertools layer (powertools + pydantic, compiled) is built per runtime; "
            "move runtime and layer name together.",
            children=False,
        )
        return function
