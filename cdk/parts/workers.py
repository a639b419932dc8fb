"""ECS: the worker cluster, the Fargate task definition the workflow's ``ecs:runTask`` starts, and the warm pool.

The task runs ``python -m container.worker`` from ``container/Dockerfile``; its workspaces live on EFS so a
replacement task for the same project+user finds the checkout (and any unpushed work) where the last one left it.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk import assets
from cdk.parts import nag
from cdk.parts.messaging import Messaging
from cdk.parts.network import Network
from cdk.parts.state import State
from workflows import names
from workflows.attachments import ATTACHMENT_PREFIX
from workflows.settings import WorkerSettings

WORKSPACE_MOUNT = WorkerSettings.model_fields["workspace_root"].default  # "/workspace", also the Dockerfile's
WORKSPACE_UID = "1000"  # the Dockerfile's `worker` user
GIT_TOKEN_ENV = WorkerSettings.env_map()["git_token"]
AGENT_API_KEY_ENV = "ANTHROPIC_API_KEY"
# ECS sends SIGTERM, then SIGKILL after this: enough to finish a long poll and release ownership.
STOP_TIMEOUT = Duration.seconds(120)
# The normalised message and its attachments, written by the inbound handler.
WORKER_READ_PREFIXES = (names.MESSAGE_PREFIX, ATTACHMENT_PREFIX)


def worker_environment(
    *,
    state: State,
    messaging: Messaging,
    mail_bucket: s3.IBucket,
    preview_bucket: s3.IBucket,
    preview_base_url: str,
    preview_origin: str,
    site_origin: str = "",
) -> dict[str, str]:
    """The task definition's plain environment, keyed by the variables ``WorkerSettings``/``Tables`` read.

    Only names and URLs: the secrets travel as ECS secrets, and the per-task values (``TASK_TOKEN``, the claimed
    pair) come from the workflow's container overrides.
    """
    var = WorkerSettings.env_map()
    return {
        var["workspace_root"]: WORKSPACE_MOUNT,
        var["mail_bucket"]: mail_bucket.bucket_name,
        var["preview_bucket"]: preview_bucket.bucket_name,
        var["preview_base_url"]: preview_base_url,
        var["preview_origin"]: preview_origin,
        var["site_origin"]: site_origin,
        var["claim_queue_url"]: messaging.claim_queue.queue_url,
        var["work_dlq_arn"]: messaging.work_dlq.queue_arn,
        **state.environment,
    }


class Workers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: Network,
        state: State,
        messaging: Messaging,
        mail_bucket: s3.IBucket,
        preview_bucket: s3.IBucket,
        preview_base_url: str,
        preview_origin: str,
        site_origin: str = "",
        cpu: int,
        memory_mib: int,
        warm_pool_size: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )

        # --- persistent workspaces -----------------------------------------------------------------------
        self.file_system = efs.FileSystem(
            self,
            "Workspaces",
            vpc=network.vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=network.worker_subnets.subnets),
            encrypted=True,
            enable_automatic_backups=True,
            lifecycle_policy=efs.LifecyclePolicy.AFTER_30_DAYS,
            performance_mode=efs.PerformanceMode.GENERAL_PURPOSE,
            throughput_mode=efs.ThroughputMode.ELASTIC,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.access_point = self.file_system.add_access_point(
            "WorkspacesAccessPoint",
            path="/workspaces",
            posix_user=efs.PosixUser(uid=WORKSPACE_UID, gid=WORKSPACE_UID),
            create_acl=efs.Acl(owner_uid=WORKSPACE_UID, owner_gid=WORKSPACE_UID, permissions="750"),
        )
        self.file_system.connections.allow_default_port_from(
            network.worker_security_group, "NFS from WebOrdinary workers"
        )

        # --- secrets (values set by the operator after the first deploy; see cdk/README.md) ----------------
        self.git_token = secretsmanager.Secret(
            self, "GitToken", description="WebOrdinary: token the worker pushes to site repositories with"
        )
        self.agent_api_key = secretsmanager.Secret(
            self, "AgentApiKey", description="WebOrdinary: API key of the coding agent (claude-code editor)"
        )
        for secret in (self.git_token, self.agent_api_key):
            nag.acknowledge(
                secret,
                "AwsSolutions-SMG4",
                "A third-party credential (git host token, agent API key): it is rotated at its issuer and then "
                "stored here; Secrets Manager cannot rotate it.",
            )

        # --- the task ------------------------------------------------------------------------------------
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            volumes=[
                ecs.Volume(
                    name="workspaces",
                    efs_volume_configuration=ecs.EfsVolumeConfiguration(
                        file_system_id=self.file_system.file_system_id,
                        transit_encryption="ENABLED",
                        authorization_config=ecs.AuthorizationConfig(
                            access_point_id=self.access_point.access_point_id, iam="ENABLED"
                        ),
                    ),
                )
            ],
        )
        self.log_group = logs.LogGroup(self, "WorkerLogs", retention=log_retention)
        self.container = self.task_definition.add_container(
            "Worker",
            container_name=names.WORKER_CONTAINER,  # the ASL's container override names it
            image=assets.worker_image(),
            essential=True,
            environment=worker_environment(
                state=state,
                messaging=messaging,
                mail_bucket=mail_bucket,
                preview_bucket=preview_bucket,
                preview_base_url=preview_base_url,
                preview_origin=preview_origin,
                site_origin=site_origin,
            ),
            secrets={
                GIT_TOKEN_ENV: ecs.Secret.from_secrets_manager(self.git_token),
                AGENT_API_KEY_ENV: ecs.Secret.from_secrets_manager(self.agent_api_key),
            },
            logging=ecs.LogDriver.aws_logs(stream_prefix="worker", log_group=self.log_group),
            stop_timeout=STOP_TIMEOUT,
        )
        self.container.add_mount_points(
            ecs.MountPoint(source_volume="workspaces", container_path=WORKSPACE_MOUNT, read_only=False)
        )
        nag.acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The plain environment holds only resource names, URLs and the workspace path (no secret): both "
            "credentials are ECS secrets from Secrets Manager.",
            children=False,
        )
        self._grant_task_role(state, messaging, mail_bucket, preview_bucket)

        # --- the warm pool ---------------------------------------------------------------------------------
        # Same task definition, no TASK_TOKEN: each task joins the pool and answers claim requests.
        self.warm_pool = ecs.FargateService(
            self,
            "WarmPool",
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=warm_pool_size,
            assign_public_ip=False,
            security_groups=[network.worker_security_group],
            vpc_subnets=ec2.SubnetSelection(subnets=network.worker_subnets.subnets),
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            # A deploy replaces pool members one at a time; a member serving a command finishes it first.
            min_healthy_percent=100 if warm_pool_size else 0,
            max_healthy_percent=200,
            enable_execute_command=False,
        )

    def _grant_task_role(
        self, state: State, messaging: Messaging, mail_bucket: s3.IBucket, preview_bucket: s3.IBucket
    ) -> None:
        """Exactly what ``container/worker/runtime.py`` calls, on the resources it calls them on."""
        role = self.task_definition.task_role
        work_queues = messaging.work_queue_arn_pattern
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="OwnWorkQueues",
                actions=[
                    "sqs:CreateQueue",
                    "sqs:GetQueueUrl",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                ],
                resources=[work_queues],
            )
        )
        messaging.claim_queue.grant_consume_messages(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="Ownership",
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                resources=[state.table(names.OWNERSHIP_TABLE).table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                # PUBLISH and UNDO read what the thread's owner saw and published; the agent's progress steps
                # are appended as it works (AgentProgress, container/worker/progress.py).
                sid="ThreadEvents",
                actions=["dynamodb:Query", "dynamodb:PutItem"],
                resources=[state.table(names.EVENTS_TABLE).table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AgentSpending",  # each agent run's cost, and CONTINUE's allowance (adapters/stores/spending.py)
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[state.table(names.SPENDING_TABLE).table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadProjects",
                actions=["dynamodb:GetItem"],
                resources=[state.table(names.PROJECTS_TABLE).table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadMessagesAndAttachments",
                actions=["s3:GetObject"],
                resources=[mail_bucket.arn_for_objects(f"{prefix}*") for prefix in WORKER_READ_PREFIXES],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WritePreviews",
                actions=["s3:PutObject", "s3:DeleteObject"],
                resources=[
                    preview_bucket.arn_for_objects(f"{names.PREVIEW_PREFIX}*"),
                    preview_bucket.arn_for_objects(f"{names.SITE_PREFIX}*"),
                    preview_bucket.arn_for_objects(f"{names.SCREENSHOT_PREFIX}*"),
                    preview_bucket.arn_for_objects(f"{names.MANIFEST_PREFIX}*"),
                    preview_bucket.arn_for_objects(f"{names.BLOB_PREFIX}*"),
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadPreviewManifests",  # what a thread's last publish left, so the next need not list it
                actions=["s3:GetObject"],
                resources=[preview_bucket.arn_for_objects(f"{names.MANIFEST_PREFIX}*")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListPreviews",
                actions=["s3:ListBucket"],
                resources=[preview_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{names.PREVIEW_PREFIX}*", f"{names.SITE_PREFIX}*"]}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="MountWorkspaces",
                actions=["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                resources=[self.file_system.file_system_arn],
                conditions={"StringEquals": {"elasticfilesystem:AccessPointArn": self.access_point.access_point_arn}},
            )
        )
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Per project+user work queues are created at run time by the owning worker, so their ARNs are only known "
            "by the fixed name prefix names.WORK_QUEUE_PREFIX; the worker reads messages/ and attachments/ (one key "
            "per message or content hash) and writes previews/{project}/{thread}/ files, sites/{project}/ live sites "
            "and screenshots/{project}/ pictures, and the changes' manifests/ and content blobs/ (one key per "
            "change or content hash).",
            applies_to=[
                nag.work_queues_finding(),
                *(nag.objects_finding(mail_bucket, prefix) for prefix in WORKER_READ_PREFIXES),
                nag.objects_finding(preview_bucket, names.PREVIEW_PREFIX),
                nag.objects_finding(preview_bucket, names.SITE_PREFIX),
                nag.objects_finding(preview_bucket, names.SCREENSHOT_PREFIX),
                nag.objects_finding(preview_bucket, names.MANIFEST_PREFIX),
                nag.objects_finding(preview_bucket, names.BLOB_PREFIX),
            ],
        )
        nag.acknowledge(
            self.task_definition.obtain_execution_role(),
            "AwsSolutions-IAM5",
            "ecr:GetAuthorizationToken, which ECS needs to pull the worker image, supports no resource-level "
            "permissions (Resource must be *); the pull itself is scoped to the image's repository.",
            applies_to=["Resource::*"],
        )

    def grant_task_response(self, state_machine: sfn.IStateMachine) -> None:
        """SendTaskSuccess/Failure/Heartbeat for the tokens the workflow hands the worker."""
        state_machine.grant_task_response(self.task_definition.task_role)
