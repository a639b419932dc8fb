"""Every AWS resource WebOrdinary uses, named once.

The embedded stack provisions exactly these (with ``local_name`` as the physical name); CDK creates them from
the same specs (letting CloudFormation pick physical names) and hands the physical names to the code through
the environment variable in ``env`` and to the ASL through the ``${placeholder}``. Nothing else in the code
base spells a table, queue or bucket name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PREFIX = "webordinary"
REPO_ROOT = Path(__file__).resolve().parent.parent
ASL_DIR = REPO_ROOT / "asl"


@dataclass(frozen=True)
class Attribute:
    name: str
    type: Literal["S", "N"] = "S"


@dataclass(frozen=True)
class LocalIndex:
    name: str
    sort_key: Attribute


@dataclass(frozen=True)
class TableSpec:
    construct_id: str
    local_name: str
    env: str
    placeholder: str
    partition_key: Attribute
    sort_key: Attribute | None = None
    local_indexes: tuple[LocalIndex, ...] = ()
    ttl_attribute: str | None = None
    purpose: str = ""


@dataclass(frozen=True)
class BucketSpec:
    construct_id: str
    local_name: str
    env: str
    placeholder: str
    purpose: str = ""


@dataclass(frozen=True)
class QueueSpec:
    construct_id: str
    local_name: str
    env: str
    placeholder: str
    purpose: str = ""
    fifo: bool = False


# --- DynamoDB ---------------------------------------------------------------------------------------------

EVENT_ORDER_INDEX = "byOrder"
EVENTS_TABLE = TableSpec(
    construct_id="EventsTable",
    local_name=f"{PREFIX}-events",
    env="WEBORDINARY_EVENTS_TABLE",
    placeholder="EventsTableName",
    partition_key=Attribute("stream"),
    sort_key=Attribute("eventId"),
    # Events are keyed by a deterministic id (so a retried append hits its own condition) and ordered by
    # ``order``: "{time}#{execution}#{state}", which needs no counter. In the ASL the time is the recording
    # state's $$.State.EnteredTime, which a Retry of that state keeps; Python writers use the same format.
    local_indexes=(LocalIndex(EVENT_ORDER_INDEX, Attribute("order")),),
    purpose="append-only event log; one stream per thread, plus intake streams for rejected mail",
)

THREADS_TABLE = TableSpec(
    construct_id="ThreadsTable",
    local_name=f"{PREFIX}-threads",
    env="WEBORDINARY_THREADS_TABLE",
    placeholder="ThreadsTableName",
    partition_key=Attribute("threadId"),
    purpose="thread -> project, user and branch mapping (written only with if_not_exists)",
)

MESSAGES_TABLE = TableSpec(
    construct_id="MessagesTable",
    local_name=f"{PREFIX}-messages",
    env="WEBORDINARY_MESSAGES_TABLE",
    placeholder="MessagesTableName",
    partition_key=Attribute("key"),
    purpose="intake decisions by SES message id, and RFC Message-IDs (sent and received) -> thread",
)

PROJECTS_TABLE = TableSpec(
    construct_id="ProjectsTable",
    local_name=f"{PREFIX}-projects",
    env="WEBORDINARY_PROJECTS_TABLE",
    placeholder="ProjectsTableName",
    partition_key=Attribute("projectId"),
    purpose="project configuration: repository, editor, build, allowed senders",
)

OWNERSHIP_TABLE = TableSpec(
    construct_id="OwnershipTable",
    local_name=f"{PREFIX}-ownership",
    env="WEBORDINARY_OWNERSHIP_TABLE",
    placeholder="OwnershipTableName",
    partition_key=Attribute("ownerKey"),
    ttl_attribute="expiresAt",
    purpose="which worker owns a project+user pair (conditional writes, lease renewed by heartbeats)",
)

SPENDING_TABLE = TableSpec(
    construct_id="SpendingTable",
    local_name=f"{PREFIX}-spending",
    env="WEBORDINARY_SPENDING_TABLE",
    placeholder="SpendingTableName",
    partition_key=Attribute("projectMonth"),
    purpose="what each project's coding agent cost per month, and what CONTINUE allowed beyond its monthly budget",
)

TABLES: tuple[TableSpec, ...] = (
    EVENTS_TABLE,
    THREADS_TABLE,
    MESSAGES_TABLE,
    PROJECTS_TABLE,
    OWNERSHIP_TABLE,
    SPENDING_TABLE,
)

# --- S3 ---------------------------------------------------------------------------------------------------

MAIL_BUCKET = BucketSpec(
    construct_id="MailBucket",
    local_name=f"{PREFIX}-mail",
    env="WEBORDINARY_MAIL_BUCKET",
    placeholder="MailBucketName",
    purpose="raw inbound MIME (inbound/), normalised messages (messages/)",
)
PREVIEW_BUCKET = BucketSpec(
    construct_id="PreviewBucket",
    local_name=f"{PREFIX}-previews",
    env="WEBORDINARY_PREVIEW_BUCKET",
    placeholder="PreviewBucketName",
    purpose="built sites per thread under previews/{project}/{thread}/",
)
BUCKETS: tuple[BucketSpec, ...] = (MAIL_BUCKET, PREVIEW_BUCKET)

RAW_MAIL_PREFIX = "inbound/"  # the SES receipt rule's S3 action writes here; the object key is prefix + SES id
MESSAGE_PREFIX = "messages/"
PREVIEW_PREFIX = "previews/"
SITE_PREFIX = "sites/"  # each project's live site, as PUBLISH deploys it: sites/{project}/
# A change's own preview is a manifest of content-addressed blobs (workflows/site_manifests.py), not a copy.
MANIFEST_PREFIX = "manifests/"
BLOB_PREFIX = "blobs/"
SCREENSHOT_PREFIX = "screenshots/"  # in the preview bucket, never served: the reply attaches them inline

# --- SQS --------------------------------------------------------------------------------------------------

CLAIM_QUEUE = QueueSpec(
    construct_id="ClaimQueue",
    local_name=f"{PREFIX}-claims",
    env="WEBORDINARY_CLAIM_QUEUE_URL",
    placeholder="ClaimQueueUrl",
    purpose="claim requests (with a task token) answered by warm workers",
)
WORK_DLQ = QueueSpec(
    construct_id="WorkDeadLetterQueue",
    local_name=f"{PREFIX}-work-dlq",
    env="WEBORDINARY_WORK_DLQ_URL",
    placeholder="WorkDeadLetterQueueUrl",
    purpose="commands that no worker could take (redrive target of every work queue)",
)
DEAD_LETTER_QUEUE = QueueSpec(
    construct_id="DeadLetterQueue",
    local_name=f"{PREFIX}-dead-letters",
    env="WEBORDINARY_DEAD_LETTER_QUEUE_URL",
    placeholder="DeadLetterQueueUrl",
    purpose="commands the workflow gave up on, with their full context; `webordinary redrive` replays them",
)
QUEUES: tuple[QueueSpec, ...] = (CLAIM_QUEUE, WORK_DLQ, DEAD_LETTER_QUEUE)

WORK_QUEUE_PREFIX = f"{PREFIX}-work-"
WORK_QUEUE_MAX_RECEIVE_COUNT = 3
# A worker deletes a command the moment it receives it, so visibility only matters for a receive nobody
# deletes: a worker that died during a long poll. SQS still completes that poll and hides the command it
# "delivered" to the dead connection for the visibility timeout (aws/aws-sdk-js#2350, aws/aws-sdk-java#2083);
# keep that short so the pair's next worker sees the command well inside the workflow's heartbeat.
WORK_QUEUE_VISIBILITY_SECONDS = 3


# --- ASL state names that code refers to --------------------------------------------------------------------

RECORD_STATE_PREFIX = "Record "


def record_state(event_type: str) -> str:
    """The message workflow's state that appends an event of ``event_type`` to the thread's log."""
    return f"{RECORD_STATE_PREFIX}{event_type}"


def is_record_state(state: str) -> bool:
    """Bookkeeping: a state that only appends an event (traces leave these out of a run's path)."""
    return state.startswith(RECORD_STATE_PREFIX)


def work_queue_name(project_id: str, user_id: str) -> str:
    """The per project+user work queue; the owning worker creates it (idempotently) when it claims the pair.

    SQS names are at most 80 characters of [A-Za-z0-9_-]; long pairs keep a readable head and a hash.
    """
    raw = f"{project_id}--{user_id}"
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", raw)
    name = WORK_QUEUE_PREFIX + safe
    if len(name) > 80:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:12]
        name = f"{WORK_QUEUE_PREFIX}{safe[: 80 - len(WORK_QUEUE_PREFIX) - 13]}-{digest}"
    return name


# --- Step Functions, ECS ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateMachineSpec:
    construct_id: str
    local_name: str
    asl_file: str
    env: str


MESSAGE_WORKFLOW = StateMachineSpec(
    construct_id="MessageWorkflow",
    local_name=f"{PREFIX}-message",
    asl_file="message.asl.json",
    env="WEBORDINARY_MESSAGE_WORKFLOW_ARN",
)


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function the workflow invokes (``placeholder`` carries its ARN into the ASL)."""

    construct_id: str
    local_name: str
    handler: str
    placeholder: str
    env_ses_domain: str
    purpose: str = ""


REPLY_FUNCTION = FunctionSpec(
    construct_id="ReplyHandler",
    local_name=f"{PREFIX}-reply",
    handler="lambdas.reply.handler.handler",
    placeholder="ReplyFunctionArn",
    env_ses_domain="WEBORDINARY_SES_MESSAGE_ID_DOMAIN",
    purpose="renders a reply in the owner's words (workflows.replies) and sends it in their mail thread",
)


# CloudFront's fallback origin for previews and live sites: a path S3 does not have gets the site's 404.html.
PREVIEW_MISSES_HANDLER = "lambdas.preview_misses.handler.handler"


def function_arn(spec: FunctionSpec, region: str, account: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{spec.local_name}"


def worker_id_for_task(task_arn: str) -> str:
    """A worker's id is its ECS task's id: the reaper can name the worker of a stopped task."""
    return "task-" + task_arn.rsplit("/", 1)[-1]


WORKER_CLUSTER = f"{PREFIX}-workers"
WORKER_TASK_FAMILY = f"{PREFIX}-worker"
WORKER_CONTAINER = "worker"


@dataclass(frozen=True)
class WorkflowTuning:
    """Numbers the ASL reads from its ``Start`` state; CDK and the embedded stack both substitute them."""

    warm_pool_size: int = 1
    claim_timeout_seconds: int = 2
    spawn_timeout_seconds: int = 300
    command_heartbeat_seconds: int = 60
    command_timeout_seconds: int = 3600
    max_attempts: int = 3


def message_workflow_substitutions(
    *,
    table_names: dict[str, str],
    claim_queue_url: str,
    dead_letter_queue_url: str,
    cluster_arn: str,
    task_definition_arn: str,
    subnets: tuple[str, str],
    security_group: str,
    tuning: WorkflowTuning,
    reply_function_arn: str,
) -> dict[str, str]:
    """Build the ``${...}`` map for the message workflow. ``table_names`` maps TableSpec.placeholder -> name."""
    from workflows.adapters.stores import messages  # the messages table's key prefixes, spelled only there

    subs = dict(table_names)
    subs.update(messages.ASL_SUBSTITUTIONS)
    subs.update(
        {
            CLAIM_QUEUE.placeholder: claim_queue_url,
            DEAD_LETTER_QUEUE.placeholder: dead_letter_queue_url,
            "WorkerClusterArn": cluster_arn,
            "WorkerTaskDefinitionArn": task_definition_arn,
            "WorkerContainerName": WORKER_CONTAINER,
            "WorkerSubnet1": subnets[0],
            "WorkerSubnet2": subnets[1],
            "WorkerSecurityGroup": security_group,
            REPLY_FUNCTION.placeholder: reply_function_arn,
            "WarmPoolSize": str(tuning.warm_pool_size),
            "ClaimTimeoutSeconds": str(tuning.claim_timeout_seconds),
            "SpawnTimeoutSeconds": str(tuning.spawn_timeout_seconds),
            "CommandHeartbeatSeconds": str(tuning.command_heartbeat_seconds),
            "CommandTimeoutSeconds": str(tuning.command_timeout_seconds),
            "MaxAttempts": str(tuning.max_attempts),
        }
    )
    return subs


PLACEHOLDER_RE = re.compile(r"\$\{(\w+)\}")


def substitute(template: str, substitutions: dict[str, str]) -> str:
    """Replace ``${Name}`` exactly as CloudFormation's DefinitionSubstitutions does (not string.Template,
    which chokes on ASL's ``$$`` and ``"x.$"``). Unknown placeholders are an error, not a silent runtime
    failure."""
    missing = sorted({m for m in PLACEHOLDER_RE.findall(template) if m not in substitutions})
    if missing:
        raise KeyError(f"no substitution for placeholders: {', '.join(missing)}")
    return PLACEHOLDER_RE.sub(lambda m: substitutions[m.group(1)], template)
