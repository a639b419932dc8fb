"""The ``message`` state machine, deployed from ``asl/message.asl.json`` with definition substitutions.

The ASL file is the workflow: CDK neither rebuilds nor rewrites it. The substitutions come from
``names.message_workflow_substitutions`` (the same function the embedded stack calls) with CloudFormation
tokens for values, and the role's permissions are read off the file: every Task state's integration and the
table or queue it names become one statement on that one resource. An integration this module does not know
stops the synth, so a new Task in the ASL cannot deploy without a deliberate grant.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import CfnCondition, Fn, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.parts import nag
from cdk.parts.messaging import Messaging
from cdk.parts.network import Network
from cdk.parts.state import State
from cdk.parts.workers import Workers
from workflows import names

ASL_FILE: Path = names.ASL_DIR / names.MESSAGE_WORKFLOW.asl_file
_SERVICE_INTEGRATION = "arn:aws:states:::"
_DYNAMODB_ACTIONS = {
    "getItem": "GetItem",
    "putItem": "PutItem",
    "updateItem": "UpdateItem",
    "deleteItem": "DeleteItem",
    "conditionCheckItem": "ConditionCheckItem",
}
# transactWriteItems' actions, as the integration that needs the same permission.
_TRANSACT_ACTIONS = {
    "Put": "putItem",
    "Update": "updateItem",
    "Delete": "deleteItem",
    "ConditionCheck": "conditionCheckItem",
}


_REPLY = names.REPLY_FUNCTION.placeholder


class UnknownIntegrationError(ValueError):
    """The ASL calls something this app grants nothing for."""


@dataclass(frozen=True)
class Integration:
    """One Task state's call: the integration (``dynamodb:putItem``) and the ``${Placeholder}`` it targets."""

    state: str
    integration: str
    target: str | None  # the placeholder in TableName/QueueUrl, or None when the target comes from the input

    @property
    def service(self) -> str:
        return self.integration.removeprefix("aws-sdk:").split(":", 1)[0]

    @property
    def operation(self) -> str:
        return self.integration.removeprefix("aws-sdk:").split(":", 1)[1].split(".", 1)[0]


def _states(states: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _states(state[key]["States"])


def _placeholder(value: Any) -> str | None:
    match = names.PLACEHOLDER_RE.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def asl_integrations(definition: Mapping[str, Any]) -> list[Integration]:
    """Every Task state's service integration, in file order."""
    found: list[Integration] = []
    for name, state in _states(definition["States"]):
        if state.get("Type") != "Task":
            continue
        resource = str(state["Resource"])
        if not resource.startswith(_SERVICE_INTEGRATION):
            raise UnknownIntegrationError(f"state {name!r}: {resource} is not a service integration")
        parameters = state.get("Parameters", {})
        integration = resource.removeprefix(_SERVICE_INTEGRATION)
        if integration == "aws-sdk:dynamodb:transactWriteItems":
            # A transaction needs each of its actions' permissions on each of its tables.
            for item in parameters["TransactItems"]:
                for kind, action in item.items():
                    found.append(
                        Integration(name, f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _placeholder(action["TableName"]))
                    )
            continue
        target = None
        for key in ("TableName", "QueueUrl", "Cluster", "FunctionName"):
            if key in parameters:
                target = _placeholder(parameters[key])
        found.append(Integration(name, integration, target))
    return found


def ses_message_id_domain(scope: Construct) -> str:
    """Where SES's Message-IDs live: ``email.amazonses.com`` in us-east-1, ``{region}.amazonses.com`` elsewhere.

    A region-agnostic stack (no region at synth) decides at deploy time with a condition.
    """
    region = Stack.of(scope).region
    if not Token.is_unresolved(region):
        return "email.amazonses.com" if region == "us-east-1" else f"{region}.amazonses.com"
    in_us_east_1 = CfnCondition(scope, "InUsEast1", expression=Fn.condition_equals(region, "us-east-1"))
    return Token.as_string(
        Fn.condition_if(in_us_east_1.logical_id, "email.amazonses.com", Fn.join("", [region, ".amazonses.com"]))
    )


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state: State,
        messaging: Messaging,
        network: Network,
        workers: Workers,
        reply_function: lambda_.IFunction,
        tuning: names.WorkflowTuning,
        sender_identity_arn: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        subnet_ids = network.worker_subnets.subnet_ids
        self.substitutions = names.message_workflow_substitutions(
            table_names=state.names_by_placeholder,
            claim_queue_url=messaging.claim_queue.queue_url,
            dead_letter_queue_url=messaging.dead_letters.queue_url,
            cluster_arn=workers.cluster.cluster_arn,
            task_definition_arn=workers.task_definition.task_definition_arn,
            subnets=(subnet_ids[0], subnet_ids[1]),
            security_group=network.worker_security_group.security_group_id,
            tuning=tuning,
            reply_function_arn=reply_function.function_arn,
        )
        # Under /aws/vendedlogs/ CloudWatch Logs authorises Step Functions with one wildcard resource-policy
        # statement instead of one per log group, which would hit the 5 KiB policy limit in a busy account.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{stack.stack_name}-{names.MESSAGE_WORKFLOW.construct_id}",
            retention=log_retention,
        )
        self.state_machine = sfn.StateMachine(
            self,
            names.MESSAGE_WORKFLOW.construct_id,
            definition_body=sfn.DefinitionBody.from_file(str(ASL_FILE)),
            definition_substitutions=self.substitutions,
            state_machine_type=sfn.StateMachineType.STANDARD,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
            comment="WebOrdinary: one execution per accepted inbound message (asl/message.asl.json)",
        )
        self.sender_identity_arn = sender_identity_arn
        self.reply_function = reply_function
        self.integrations = asl_integrations(json.loads(ASL_FILE.read_text()))
        for statement in self._statements(state, messaging, workers):
            self.state_machine.add_to_role_policy(statement)
        nag.acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5",
            "Work queues are created per project+user at run time by the owning worker; only their fixed name "
            "prefix names.WORK_QUEUE_PREFIX is known at deploy time. X-Ray and CloudWatch Logs delivery actions "
            "(added by CDK for tracing and logging) do not support resource-level permissions.",
            applies_to=[nag.work_queues_finding(), "Resource::*"],
        )

    def _statements(self, state: State, messaging: Messaging, workers: Workers) -> list[iam.PolicyStatement]:
        """One statement per (action, resource) the ASL's Task states need, each on a concrete resource."""
        tables = {spec.placeholder: state.table(spec) for spec in names.TABLES}
        queues = messaging.queues_by_placeholder
        grants: dict[str, set[str]] = {}  # action -> resources (tokens are strings too)
        order: list[str] = []

        def grant(action: str, *resources: str) -> None:
            if action not in grants:
                grants[action] = set()
                order.append(action)
            grants[action].update(resources)

        for call in self.integrations:
            if call.service == "dynamodb" and call.operation in _DYNAMODB_ACTIONS and call.target in tables:
                grant(f"dynamodb:{_DYNAMODB_ACTIONS[call.operation]}", tables[call.target].table_arn)
            elif call.service == "sqs" and call.operation == "sendMessage":
                # A QueueUrl taken from the input is a work queue (the owner's, from the ownership table).
                arn = queues[call.target].queue_arn if call.target in queues else messaging.work_queue_arn_pattern
                grant("sqs:SendMessage", arn)
            elif call.service == "ecs" and call.operation == "runTask":
                grant("ecs:RunTask", workers.task_definition.task_definition_arn)
            elif call.service == "sesv2" and call.operation == "sendEmail":
                grant("ses:SendEmail", self.sender_identity_arn)
            elif call.service == "lambda" and call.operation == "invoke" and call.target == _REPLY:
                grant("lambda:InvokeFunction", self.reply_function.function_arn)
            else:
                raise UnknownIntegrationError(
                    f"state {call.state!r} calls {call.integration} on {call.target!r}: "
                    "grant it in cdk/parts/workflow.py"
                )
        statements = []
        for action in order:
            conditions = None
            if action == "ecs:RunTask":
                # Only in the worker cluster, and only with the worker roles (next statement).
                conditions = {"ArnEquals": {"ecs:cluster": workers.cluster.cluster_arn}}
            statements.append(
                iam.PolicyStatement(actions=[action], resources=sorted(grants[action]), conditions=conditions)
            )
        if "ecs:RunTask" in grants:
            statements.append(
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[
                        workers.task_definition.task_role.role_arn,
                        workers.task_definition.obtain_execution_role().role_arn,
                    ],
                    conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                )
            )
        return statements
