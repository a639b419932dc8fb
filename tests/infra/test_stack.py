"""What ``cdk deploy`` would create, checked on the synthesised template (no AWS account needed)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match

from cdk.parts import messaging as messaging_part
from cdk.parts.observability import COMMAND_OUTCOMES
from cdk.parts.workers import AGENT_API_KEY_ENV, GIT_TOKEN_ENV, WORKSPACE_MOUNT
from cdk.parts.workflow import ASL_FILE
from tests.infra.conftest import ALERT_EMAIL, INBOUND_DOMAIN, WARM_POOL_SIZE, Synthesized
from workflows import event_metrics, names
from workflows.settings import InboundSettings, Tables, WorkerSettings

pytestmark = pytest.mark.infra

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def _mappings_of(synthesized: Synthesized, function: Any) -> list[dict[str, Any]]:
    """The event source mappings that invoke ``function``."""
    logical_id = synthesized.logical_id(function)
    mappings = synthesized.resources("AWS::Lambda::EventSourceMapping").values()
    return [m for m in mappings if m["Properties"]["FunctionName"] == {"Ref": logical_id}]


def _ref_target(value: Any) -> str:
    """The logical id a Ref / Fn::GetAtt points at."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"not a reference: {value!r}")


def _statements(synthesized: Synthesized, role_logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        roles = [_ref_target(r) for r in policy["Properties"].get("Roles", [])]
        if role_logical_id in roles:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _denies_plain_http(statement: dict[str, Any]) -> bool:
    return statement["Effect"] == "Deny" and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}


# --- the workflow ------------------------------------------------------------------------------------------


def test_the_state_machine_runs_the_asl_file_itself_with_every_placeholder_substituted(
    synthesized: Synthesized,
) -> None:
    _, machine = synthesized.only("AWS::StepFunctions::StateMachine")
    props = machine["Properties"]
    # Deployed from the file (an S3 asset), not from a copy in the template.
    asset_hash = props["DefinitionS3Location"]["Key"].removesuffix(".json")
    staged = synthesized.outdir / f"asset.{asset_hash}.json"
    asl_text = ASL_FILE.read_text()
    assert staged.read_text() == asl_text

    substitutions: dict[str, Any] = props["DefinitionSubstitutions"]
    assert set(PLACEHOLDER.findall(asl_text)) <= set(substitutions)

    # CloudFormation's substitution, with each token written as the JSON of its intrinsic: nothing unresolved,
    # and the result is the ASL document it was, state for state.
    rendered = PLACEHOLDER.sub(
        lambda m: v if isinstance(v := substitutions[m.group(1)], str) else json.dumps(v).replace('"', "'"), asl_text
    )
    assert "${" not in rendered
    assert json.loads(rendered)["States"].keys() == json.loads(asl_text)["States"].keys()

    table_ids = {spec.placeholder: synthesized.logical_id(synthesized.stack.state.table(spec)) for spec in names.TABLES}
    for placeholder, logical_id in table_ids.items():
        assert _ref_target(substitutions[placeholder]) == logical_id
    assert _ref_target(substitutions[names.CLAIM_QUEUE.placeholder]) == synthesized.logical_id(
        synthesized.stack.messaging.claim_queue
    )
    assert _ref_target(substitutions["WorkerTaskDefinitionArn"]) == synthesized.logical_id(
        synthesized.stack.workers.task_definition
    )
    assert _ref_target(substitutions["WorkerClusterArn"]) == synthesized.logical_id(synthesized.stack.workers.cluster)
    assert substitutions["WorkerContainerName"] == names.WORKER_CONTAINER
    assert substitutions["WarmPoolSize"] == str(WARM_POOL_SIZE)
    reply = synthesized.logical_id(synthesized.stack.replies.function)
    assert substitutions[names.REPLY_FUNCTION.placeholder] == {"Fn::GetAtt": [reply, "Arn"]}
    reply_env = synthesized.template["Resources"][reply]["Properties"]["Environment"]["Variables"]
    assert reply_env[names.REPLY_FUNCTION.env_ses_domain] == "email.amazonses.com"  # us-east-1
    previews = synthesized.logical_id(synthesized.stack.storage.previews)
    assert _ref_target(reply_env[names.PREVIEW_BUCKET.env]) == previews  # where the pictures of a change are
    assert _ref_target(substitutions["WorkerSubnet1"]) != _ref_target(substitutions["WorkerSubnet2"])


def test_the_state_machine_is_standard_logged_at_all_and_traced(synthesized: Synthesized) -> None:
    synthesized.assertions.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": {"Level": "ALL", "IncludeExecutionData": True, "Destinations": Match.any_value()},
        },
    )
    group_id = synthesized.logical_id(synthesized.stack.workflow.log_group)
    assert synthesized.template["Resources"][group_id]["Properties"]["RetentionInDays"] >= 1


def test_the_workflow_role_names_exactly_the_resources_the_asl_touches(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    role_id = synthesized.logical_id(stack.workflow.state_machine.role)
    granted: set[tuple[str, str]] = set()
    for statement in _statements(synthesized, role_id):
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                granted.add((action, resource if isinstance(resource, str) else _ref_target(resource)))

    # What the ASL's Task states call, read straight off the file.
    by_placeholder = {spec.placeholder: synthesized.logical_id(stack.state.table(spec)) for spec in names.TABLES}
    by_placeholder.update({p: synthesized.logical_id(q) for p, q in stack.messaging.queues_by_placeholder.items()})
    work_queues = f"arn:aws:sqs:us-east-1:123456789012:{names.WORK_QUEUE_PREFIX}*"
    expected: set[tuple[str, str]] = set()
    for state in json.loads(ASL_FILE.read_text())["States"].values():
        if state["Type"] != "Task":
            continue
        integration = state["Resource"].removeprefix("arn:aws:states:::").removeprefix("aws-sdk:")
        service, operation = integration.split(".")[0].split(":")
        params = state["Parameters"]
        if service == "dynamodb" and operation == "transactWriteItems":
            for item in params["TransactItems"]:
                for kind, action in item.items():
                    table = by_placeholder[PLACEHOLDER.fullmatch(action["TableName"]).group(1)]  # type: ignore[union-attr]
                    expected.add(
                        (f"dynamodb:{kind}Item" if kind != "ConditionCheck" else "dynamodb:ConditionCheckItem", table)
                    )
        elif service == "dynamodb":
            table = by_placeholder[PLACEHOLDER.fullmatch(params["TableName"]).group(1)]  # type: ignore[union-attr]
            expected.add((f"dynamodb:{operation[0].upper()}{operation[1:]}", table))
        elif service == "sqs":
            target = PLACEHOLDER.fullmatch(params.get("QueueUrl", ""))
            expected.add(("sqs:SendMessage", by_placeholder[target.group(1)] if target else work_queues))
        elif service == "ecs":
            expected.add(("ecs:RunTask", synthesized.logical_id(stack.workers.task_definition)))
            expected.add(("iam:PassRole", synthesized.logical_id(stack.workers.task_definition.task_role)))
            expected.add(("iam:PassRole", synthesized.logical_id(stack.workers.task_definition.execution_role)))
        elif service == "sesv2":
            expected.add(("ses:SendEmail", f"arn:aws:ses:us-east-1:123456789012:identity/{INBOUND_DOMAIN}"))
        elif service == "lambda" and params["FunctionName"] == f"${{{names.REPLY_FUNCTION.placeholder}}}":
            expected.add(("lambda:InvokeFunction", synthesized.logical_id(stack.replies.function)))
        else:
            raise AssertionError(f"the test does not know {integration}")
    # Tracing and log delivery (added by CDK) take Resource "*"; everything else is exactly the ASL's needs.
    assert {g for g in granted if g[1] != "*"} == expected
    assert {a for a, r in granted if r == "*"} <= {a for a, _ in granted if WILDCARD_ONLY_ACTIONS.match(a)}


# Actions AWS authorises only on Resource "*": X-Ray, CloudWatch Logs vended-log delivery, the ECR login, and
# DynamoDB's ListStreams (which a stream event source needs).
WILDCARD_ONLY_ACTIONS = re.compile(
    r"^(xray:"
    r"|logs:(Create|Delete|Describe|Get|List|Put|Update)"
    r"(LogDelivery|LogDeliveries|LogGroups|ResourcePolicies|ResourcePolicy)$"
    r"|ecr:GetAuthorizationToken$"
    r"|dynamodb:ListStreams$)"
)


def test_no_policy_grants_a_bare_wildcard_except_for_actions_that_only_take_one(synthesized: Synthesized) -> None:
    allowed_patterns = (
        re.compile(rf"^arn:aws:sqs:us-east-1:123456789012:{re.escape(names.WORK_QUEUE_PREFIX)}\*$"),
        re.compile(r"^arn:aws:s3:::.+/(inbound|messages|attachments|previews|sites|screenshots)/\*$"),
    )
    for logical_id, policy in synthesized.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for resource in _as_list(statement["Resource"]):
                if resource == "*":
                    offending = [a for a in _as_list(statement["Action"]) if not WILDCARD_ONLY_ACTIONS.match(a)]
                    assert not offending, f"{logical_id} grants {offending} on *"
                elif isinstance(resource, str) and "*" in resource:
                    assert any(p.match(resource) for p in allowed_patterns), f"{logical_id}: {resource}"
                elif isinstance(resource, dict) and "Fn::Join" in resource:
                    tail = "".join(part for part in resource["Fn::Join"][1] if isinstance(part, str))
                    assert "*" not in tail or re.search(
                        r"/(inbound|messages|attachments|previews|sites|screenshots|manifests|blobs)/\*(/404\.html)?$",
                        tail,
                    ), f"{logical_id}: {resource}"


# --- intake ------------------------------------------------------------------------------------------------


def test_the_receipt_rule_stores_the_mail_before_it_invokes_the_handler(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    _, rule = synthesized.only("AWS::SES::ReceiptRule")
    props = rule["Properties"]["Rule"]
    assert props["Recipients"] == [INBOUND_DOMAIN]
    assert props["Enabled"] is True
    assert props["ScanEnabled"] is True
    first, second = props["Actions"]
    assert _ref_target(first["S3Action"]["BucketName"]) == synthesized.logical_id(stack.storage.mail)
    assert first["S3Action"]["ObjectKeyPrefix"] == names.RAW_MAIL_PREFIX
    assert second["LambdaAction"]["InvocationType"] == "Event"
    assert _ref_target(second["LambdaAction"]["FunctionArn"]) == synthesized.logical_id(stack.intake.handler)
    assert _ref_target(rule["Properties"]["RuleSetName"]) == synthesized.logical_id(stack.intake.rule_set)


def test_the_inbound_handler_has_its_own_dlq_tracing_and_the_powertools_layer(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    function = synthesized.template["Resources"][synthesized.logical_id(stack.intake.handler)]["Properties"]
    assert function["Handler"] == "lambdas.inbound.handler.handler"
    assert function["Runtime"] == "python3.12"
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert _ref_target(function["DeadLetterConfig"]["TargetArn"]) == synthesized.logical_id(
        stack.intake.dead_letter_queue
    )
    layers = json.dumps(function["Layers"])
    assert "017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:" in layers
    assert all(f'"{layer}"' in layers for layer in synthesized.resources("AWS::Lambda::LayerVersion"))


def test_every_function_has_a_log_group_with_retention_and_a_role_of_its_own(synthesized: Synthesized) -> None:
    for logical_id, function in synthesized.resources("AWS::Lambda::Function").items():
        props = function["Properties"]
        group = synthesized.template["Resources"][_ref_target(props["LoggingConfig"]["LogGroup"])]
        assert group["Properties"]["RetentionInDays"] >= 1, logical_id
        role = synthesized.template["Resources"][_ref_target(props["Role"])]
        assert "ManagedPolicyArns" not in role["Properties"], f"{logical_id} uses a managed policy"


# --- environments match the settings models ------------------------------------------------------------

# Worker variables the task definition deliberately does not set, and why.
WORKER_PER_TASK = {"task_token", "claim_project_id", "claim_user_id", "exit_when_idle"}  # ecs:runTask overrides
WORKER_DEFAULTED = {  # the model's defaults are right on AWS
    "worker_id",  # a fresh id per process
    "idle_seconds",
    "heartbeat_seconds",
    "poll_seconds",
    "git_author_name",
    "git_author_email",
    "git_token",  # an ECS secret, not plain environment (test_the_task_definition_takes_its_credentials...)
    "browser",  # the image installs Chromium; the worker finds it on PATH
    "agent_executable",  # the image installs the pinned CLI as `claude`
    "agent_api_key",  # an ECS secret (ANTHROPIC_API_KEY), not plain environment
}
KNOWN_EXTRA = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


def _environment(properties: dict[str, Any]) -> dict[str, Any]:
    return dict(properties.get("Environment", {}).get("Variables", {}))


def test_the_inbound_handler_environment_covers_inbound_settings_and_tables(synthesized: Synthesized) -> None:
    function = synthesized.template["Resources"][synthesized.logical_id(synthesized.stack.intake.handler)]
    env = _environment(function["Properties"])
    required = set(InboundSettings.env_map().values()) | set(Tables.env_map().values())
    assert required <= env.keys(), sorted(required - env.keys())
    assert env.keys() <= required | KNOWN_EXTRA, sorted(env.keys() - required - KNOWN_EXTRA)
    assert env["WEBORDINARY_INBOUND_DOMAIN"] == INBOUND_DOMAIN
    assert env[InboundSettings.env_map()["raw_mail_prefix"]] == names.RAW_MAIL_PREFIX


def test_the_worker_environment_covers_worker_settings_and_the_asl_sets_the_rest(synthesized: Synthesized) -> None:
    fields = WorkerSettings.env_map()
    assert fields.keys() >= WORKER_PER_TASK | WORKER_DEFAULTED
    unclassified = fields.keys() - WORKER_PER_TASK - WORKER_DEFAULTED
    _, task = synthesized.only("AWS::ECS::TaskDefinition")
    (container,) = task["Properties"]["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    required = {fields[f] for f in unclassified} | set(Tables.env_map().values())
    assert required <= env.keys(), sorted(required - env.keys())
    assert env.keys() <= required, sorted(env.keys() - required)
    assert env[fields["workspace_root"]] == WORKSPACE_MOUNT

    # The per-task variables are exactly what the ASL's container override sets.
    spawn = json.loads(ASL_FILE.read_text())["States"]["Spawn worker"]
    (override,) = spawn["Parameters"]["Overrides"]["ContainerOverrides"]
    assert {e["Name"] for e in override["Environment"]} == {fields[f] for f in WORKER_PER_TASK}


# --- the worker task ---------------------------------------------------------------------------------------


def test_the_task_definition_takes_its_credentials_from_secrets_manager_only(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    _, task = synthesized.only("AWS::ECS::TaskDefinition")
    (container,) = task["Properties"]["ContainerDefinitions"]
    secrets = {s["Name"]: _ref_target(s["ValueFrom"]) for s in container["Secrets"]}
    assert secrets == {
        GIT_TOKEN_ENV: synthesized.logical_id(stack.workers.git_token),
        AGENT_API_KEY_ENV: synthesized.logical_id(stack.workers.agent_api_key),
    }
    for variable in container["Environment"]:
        assert not re.search(r"TOKEN|SECRET|PASSWORD|API_KEY", variable["Name"]), variable["Name"]
    # Only the execution role (which starts the container) may read them.
    execution_role = synthesized.logical_id(stack.workers.task_definition.execution_role)
    readers = [
        s for s in _statements(synthesized, execution_role) if "secretsmanager:GetSecretValue" in _as_list(s["Action"])
    ]
    assert {_ref_target(r) for s in readers for r in _as_list(s["Resource"])} == set(secrets.values())


def test_the_task_mounts_encrypted_efs_through_an_access_point_and_logs_to_cloudwatch(
    synthesized: Synthesized,
) -> None:
    _, task = synthesized.only("AWS::ECS::TaskDefinition")
    props = task["Properties"]
    (container,) = props["ContainerDefinitions"]
    assert container["Name"] == names.WORKER_CONTAINER
    assert container["MountPoints"] == [
        {"ContainerPath": WORKSPACE_MOUNT, "ReadOnly": False, "SourceVolume": "workspaces"}
    ]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    (volume,) = props["Volumes"]
    efs = volume["EFSVolumeConfiguration"]
    assert efs["TransitEncryption"] == "ENABLED"
    assert efs["AuthorizationConfig"]["IAM"] == "ENABLED"
    assert "AccessPointId" in efs["AuthorizationConfig"]
    synthesized.assertions.has_resource_properties("AWS::EFS::FileSystem", {"Encrypted": True})
    assert props["RequiresCompatibilities"] == ["FARGATE"]
    assert "Image" in container and "Fn::Sub" in json.dumps(container["Image"])  # the container/ asset in ECR


def test_the_task_role_does_what_the_worker_does(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    statements = _statements(synthesized, synthesized.logical_id(stack.workers.task_definition.task_role))
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert {"sqs:CreateQueue", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions
    assert {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"} <= actions
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"} <= actions
    assert {"s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetObject"} <= actions
    assert not any(a.endswith(":*") for a in actions)
    send_task = [s for s in statements if "states:SendTaskSuccess" in _as_list(s["Action"])]
    assert [_ref_target(r) for s in send_task for r in _as_list(s["Resource"])] == [
        synthesized.logical_id(stack.workflow.state_machine)
    ]


def test_the_cluster_the_warm_pool_and_the_workers_network(synthesized: Synthesized) -> None:
    synthesized.assertions.has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": Match.array_with([{"Name": "containerInsights", "Value": "enabled"}])},
    )
    _, service = synthesized.only("AWS::ECS::Service")
    props = service["Properties"]
    assert props["DesiredCount"] == WARM_POOL_SIZE
    assert props["LaunchType"] == "FARGATE"
    network = props["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    worker_sg = synthesized.logical_id(synthesized.stack.network.worker_security_group)
    assert [_ref_target(g) for g in network["SecurityGroups"]] == [worker_sg]
    group = synthesized.template["Resources"][worker_sg]["Properties"]
    assert "SecurityGroupIngress" not in group
    for ingress in synthesized.resources("AWS::EC2::SecurityGroupIngress").values():
        assert _ref_target(ingress["Properties"]["GroupId"]) != worker_sg


# --- state -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", names.TABLES, ids=lambda spec: spec.construct_id)
def test_each_table_has_the_names_module_key_schema_on_demand_with_pitr(
    synthesized: Synthesized, spec: names.TableSpec
) -> None:
    table = synthesized.template["Resources"][synthesized.logical_id(synthesized.stack.state.table(spec))]
    props = table["Properties"]
    expected_keys = [{"AttributeName": spec.partition_key.name, "KeyType": "HASH"}]
    if spec.sort_key:
        expected_keys.append({"AttributeName": spec.sort_key.name, "KeyType": "RANGE"})
    assert props["KeySchema"] == expected_keys
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    if spec.ttl_attribute:
        assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props
    indexes = {i["IndexName"]: i for i in props.get("LocalSecondaryIndexes", [])}
    assert set(indexes) == {i.name for i in spec.local_indexes}
    for index in spec.local_indexes:
        assert indexes[index.name]["KeySchema"][1] == {"AttributeName": index.sort_key.name, "KeyType": "RANGE"}
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    for attribute in [
        spec.partition_key,
        *([spec.sort_key] if spec.sort_key else []),
        *(i.sort_key for i in spec.local_indexes),
    ]:
        assert types[attribute.name] == attribute.type
    assert table["DeletionPolicy"] == "Retain"


def test_the_event_log_streams_its_new_events(synthesized: Synthesized) -> None:
    events = synthesized.template["Resources"][
        synthesized.logical_id(synthesized.stack.state.table(names.EVENTS_TABLE))
    ]
    assert events["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}


# --- messaging ---------------------------------------------------------------------------------------------


def _queue_retention(queue: dict[str, Any]) -> int:
    return int(queue["Properties"].get("MessageRetentionPeriod", 345600))  # SQS's default: 4 days


def test_every_queue_has_a_dlq_or_is_one_and_keeps_messages_longer_than_its_source(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    dead_letter_targets: set[str] = set()
    for logical_id, queue in queues.items():
        redrive = queue["Properties"].get("RedrivePolicy")
        if redrive:
            target = _ref_target(redrive["deadLetterTargetArn"])
            dead_letter_targets.add(target)
            assert redrive["maxReceiveCount"] >= 1
            assert _queue_retention(queues[target]) > _queue_retention(queue), logical_id
    for function in synthesized.resources("AWS::Lambda::Function").values():
        if "DeadLetterConfig" in function["Properties"]:
            dead_letter_targets.add(_ref_target(function["Properties"]["DeadLetterConfig"]["TargetArn"]))
    # The workflow's own dead-letter store: the state machine sends to it ("Dead-letter the command").
    dead_letter_targets.add(synthesized.logical_id(synthesized.stack.messaging.dead_letters))
    # Stream event sources' on-failure destinations.
    for mapping in synthesized.resources("AWS::Lambda::EventSourceMapping").values():
        on_failure = mapping["Properties"].get("DestinationConfig", {}).get("OnFailure", {})
        if on_failure:
            dead_letter_targets.add(_ref_target(on_failure["Destination"]))
    for logical_id, queue in queues.items():
        assert "RedrivePolicy" in queue["Properties"] or logical_id in dead_letter_targets, logical_id
    # A consumed dead-letter queue must itself redrive: the work DLQ (its consumer may fail).
    work_dlq = synthesized.logical_id(synthesized.stack.messaging.work_dlq)
    assert "RedrivePolicy" in queues[work_dlq]["Properties"]


def test_the_work_dlq_outlives_the_work_queues_the_worker_creates() -> None:
    """The per-pair queues are created by container/worker/pairs.py, not the template: check its attributes."""
    from container.worker.pairs import Pairs
    from workflows.adapters.stores.ownership import InMemoryOwnership
    from workflows.adapters.task_tokens import TaskTokens

    created: dict[str, Any] = {}

    class RecordingSqs:
        def create_queue(self, QueueName: str, Attributes: dict[str, str]) -> dict[str, str]:
            created.update(name=QueueName, attributes=Attributes)
            return {"QueueUrl": f"https://sqs.example/{QueueName}"}

    dlq = WorkerSettings(work_dlq_arn="arn:aws:sqs:us-east-1:123456789012:dlq").work_dlq_arn
    Pairs(RecordingSqs(), InMemoryOwnership(), TaskTokens(None), "w-1", dlq).queue_url("bakery", "alice")
    assert created["name"].startswith(names.WORK_QUEUE_PREFIX)
    retention = int(created["attributes"]["MessageRetentionPeriod"])
    assert retention == messaging_part.WORK_QUEUE_RETENTION.to_seconds()
    assert messaging_part.WORK_DLQ_RETENTION.to_seconds() > retention
    redrive = json.loads(created["attributes"]["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == names.WORK_QUEUE_MAX_RECEIVE_COUNT


def test_every_queue_is_encrypted_and_refuses_plain_http(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    tls_only: set[str] = set()
    for policy in synthesized.resources("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if _denies_plain_http(statement):
                tls_only.update(_ref_target(q) for q in policy["Properties"]["Queues"])
    for logical_id, queue in queues.items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, logical_id
        assert logical_id in tls_only, logical_id


def test_the_dead_letter_consumer_drains_the_work_dlq_and_may_only_fail_tasks(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    (mapping,) = _mappings_of(synthesized, stack.dead_letters.consumer)
    assert _ref_target(mapping["Properties"]["EventSourceArn"]) == synthesized.logical_id(stack.messaging.work_dlq)
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    consumer = synthesized.template["Resources"][synthesized.logical_id(stack.dead_letters.consumer)]["Properties"]
    assert consumer["Handler"] == "lambdas.dead_letter.handler.handler"
    role = _ref_target(consumer["Role"])
    actions = {a for s in _statements(synthesized, role) for a in _as_list(s["Action"])}
    assert "states:SendTaskFailure" in actions
    assert not {a for a in actions if a.startswith(("dynamodb:", "s3:", "ecs:"))}


# --- storage and previews ----------------------------------------------------------------------------------


def test_every_bucket_is_private_encrypted_and_tls_only(synthesized: Synthesized) -> None:
    buckets = synthesized.resources("AWS::S3::Bucket")
    tls_only = set()
    for policy in synthesized.resources("AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if _denies_plain_http(statement):
                tls_only.add(_ref_target(policy["Properties"]["Bucket"]))
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id
        assert logical_id in tls_only, logical_id


def test_raw_mail_has_a_lifecycle(synthesized: Synthesized) -> None:
    mail = synthesized.template["Resources"][synthesized.logical_id(synthesized.stack.storage.mail)]["Properties"]
    rules = {r["Id"]: r for r in mail["LifecycleConfiguration"]["Rules"]}
    raw = rules["raw-mail"]
    assert raw["Prefix"] == names.RAW_MAIL_PREFIX
    assert raw["ExpirationInDays"] == 365
    assert raw["Status"] == "Enabled"


def test_previews_are_served_only_through_cloudfront_origin_access_control(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    controls = synthesized.resources("AWS::CloudFront::OriginAccessControl").values()
    kinds = sorted(c["Properties"]["OriginAccessControlConfig"]["OriginAccessControlOriginType"] for c in controls)
    assert kinds == ["lambda", "s3"]  # the bucket, and the 404 pages' function URL: nothing is public
    _, distribution = synthesized.only("AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    s3_origin, misses_origin = config["Origins"]
    assert "OriginAccessControlId" in s3_origin and "OriginAccessControlId" in misses_origin
    assert "S3OriginConfig" in s3_origin and "CustomOriginConfig" in misses_origin
    # A path S3 does not have (403 without ListBucket, 404) is answered by the site's own 404 page.
    (group,) = config["OriginGroups"]["Items"]
    assert sorted(group["FailoverCriteria"]["StatusCodes"]["Items"]) == [403, 404]
    assert [m["OriginId"] for m in group["Members"]["Items"]] == [s3_origin["Id"], misses_origin["Id"]]
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == group["Id"]
    _, function_url = synthesized.only("AWS::Lambda::Url")
    assert function_url["Properties"]["AuthType"] == "AWS_IAM"
    assert _ref_target(function_url["Properties"]["TargetFunctionArn"]) == synthesized.logical_id(stack.previews.misses)
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    preview_bucket = synthesized.logical_id(stack.storage.previews)
    for policy in synthesized.resources("AWS::S3::BucketPolicy").values():
        if _ref_target(policy["Properties"]["Bucket"]) != preview_bucket:
            continue
        allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
        assert allows and all(s["Principal"] == {"Service": "cloudfront.amazonaws.com"} for s in allows)
    # The worker's preview links point at the distribution.
    _, task = synthesized.only("AWS::ECS::TaskDefinition")
    (container,) = task["Properties"]["ContainerDefinitions"]
    base_url = next(e["Value"] for e in container["Environment"] if e["Name"] == "WEBORDINARY_PREVIEW_BASE_URL")
    assert "https://" in json.dumps(base_url)
    assert synthesized.logical_id(stack.previews.distribution) in json.dumps(base_url)


# --- observability -----------------------------------------------------------------------------------------


def test_alarms_cover_dead_letters_failures_timeouts_age_and_silence(synthesized: Synthesized) -> None:
    alarms = synthesized.resources("AWS::CloudWatch::Alarm")
    topic = synthesized.logical_id(synthesized.stack.observability.topic)
    for logical_id, alarm in alarms.items():
        assert [_ref_target(a) for a in alarm["Properties"]["AlarmActions"]] == [topic], logical_id
    metrics = json.dumps(alarms)
    stack = synthesized.stack
    for queue in (
        stack.messaging.dead_letters,
        stack.messaging.claim_dlq,
        stack.messaging.work_dlq,
        stack.messaging.work_dlq_failures,
        stack.intake.dead_letter_queue,
    ):
        assert synthesized.logical_id(queue) in metrics
    for metric_name in (
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "CommandTimeouts",
        "ApproximateAgeOfOldestMessage",
        "ExecutionsSucceeded",
        "Invocations",
    ):
        assert f'"MetricName": "{metric_name}"' in metrics, metric_name
    synthesized.assertions.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": ALERT_EMAIL}
    )
    synthesized.assertions.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})


def test_the_dashboard_shows_executions_commands_queues_workers_and_the_handler(synthesized: Synthesized) -> None:
    _, dashboard = synthesized.only("AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for text in (
        "ExecutionsStarted",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
        "CommandsInterrupted",
        "CommandsDeadLettered",
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "RunningTaskCount",
        "Errors",
        "Duration",
    ):
        assert text in body, text


def test_command_outcomes_are_counted_from_recorded_events_never_from_asl_states(synthesized: Synthesized) -> None:
    """Merging or renaming a bookkeeping state must not zero a dashboard line: no metric counts state entries."""
    assert {name for name, _ in COMMAND_OUTCOMES} <= set(event_metrics.METRIC_BY_EVENT.values())
    for metric_filter in synthesized.resources("AWS::Logs::MetricFilter").values():
        assert "$.details.name" not in json.dumps(metric_filter["Properties"]["FilterPattern"])
    alarms = json.dumps(synthesized.resources("AWS::CloudWatch::Alarm"))
    for name in (event_metrics.COMMAND_TIMEOUTS, event_metrics.UNREADABLE_EVENTS):
        assert f'"MetricName": "{name}"' in alarms, name
    assert f'"Value": "{event_metrics.SERVICE}"' in alarms


def test_each_new_event_reaches_the_event_metrics_function(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    (mapping,) = _mappings_of(synthesized, stack.event_metrics.function)
    properties = mapping["Properties"]
    assert "StreamArn" in json.dumps(properties["EventSourceArn"])
    assert synthesized.logical_id(stack.state.table(names.EVENTS_TABLE)) in json.dumps(properties["EventSourceArn"])
    assert properties["FunctionName"]["Ref"] == synthesized.logical_id(stack.event_metrics.function)
    assert json.loads(properties["FilterCriteria"]["Filters"][0]["Pattern"]) == {"eventName": ["INSERT"]}
    assert properties["BisectBatchOnFunctionError"] is True
    assert "OnFailure" in properties["DestinationConfig"]
    function = synthesized.resources("AWS::Lambda::Function")[synthesized.logical_id(stack.event_metrics.function)]
    assert function["Properties"]["Handler"] == "lambdas.event_metrics.handler.handler"


def test_the_handlers_get_their_extra_dependencies_in_a_layer_built_without_docker(synthesized: Synthesized) -> None:
    layers = synthesized.resources("AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    (layer,) = layers.values()
    asset_hash = str(layer["Properties"]["Content"]["S3Key"]).removesuffix(".zip")
    staged = synthesized.outdir / f"asset.{asset_hash}" / "python"
    assert (staged / "mailparser_reply" / "__init__.py").exists()  # what workflows.mail imports
    for function in synthesized.resources("AWS::Lambda::Function").values():
        if function["Properties"].get("Handler", "").startswith("lambdas."):
            assert len(function["Properties"]["Layers"]) == 2


def test_a_stopped_worker_task_reaches_the_reaper(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    rules = [
        r for r in synthesized.resources("AWS::Events::Rule").values() if r["Properties"]["EventPattern"].get("source")
    ]
    (rule,) = [r for r in rules if r["Properties"]["EventPattern"]["source"] == ["aws.ecs"]]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    assert _ref_target(pattern["detail"]["clusterArn"][0]) == synthesized.logical_id(stack.workers.cluster)
    (target,) = rule["Properties"]["Targets"]
    assert _ref_target(target["Arn"]) == synthesized.logical_id(stack.reaper.function)
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 4
    function = synthesized.template["Resources"][synthesized.logical_id(stack.reaper.function)]["Properties"]
    assert function["Handler"] == "lambdas.reaper.handler.handler"
    assert names.OWNERSHIP_TABLE.env in function["Environment"]["Variables"]


def test_who_reads_what_in_the_preview_bucket(
    synthesized: Synthesized,
) -> None:
    previews = synthesized.logical_id(synthesized.stack.storage.previews)
    granted: dict[str, list[str]] = {}
    for logical_id, policy in synthesized.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for resource in _as_list(statement["Resource"]):
                if (
                    isinstance(resource, dict)
                    and "Fn::Join" in resource
                    and "s3:GetObject" in _as_list(statement["Action"])
                ):
                    parts = resource["Fn::Join"][1]
                    if {"Fn::GetAtt": [previews, "Arn"]} in parts:
                        granted.setdefault(logical_id, []).append("".join(p for p in parts if isinstance(p, str)))
    owners = ("Replies", "PreviewsNotFoundPages", "WorkersTaskDefinitionTaskRole")
    readers = {next(k for k in owners if k in lid): sorted(g) for lid, g in granted.items()}
    assert readers == {
        "WorkersTaskDefinitionTaskRole": [f"/{names.MANIFEST_PREFIX}*"],  # what the thread's last publish left
        "Replies": [f"/{names.SCREENSHOT_PREFIX}*"],
        "PreviewsNotFoundPages": sorted(
            [
                f"/{names.PREVIEW_PREFIX}*/404.html",
                f"/{names.SITE_PREFIX}*/404.html",
                f"/{names.MANIFEST_PREFIX}*",
                f"/{names.BLOB_PREFIX}*",
            ]
        ),
    }
