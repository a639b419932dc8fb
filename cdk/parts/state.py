"""DynamoDB: one table per ``names.TABLES`` spec, with the spec's keys, local indexes and TTL."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from workflows import names

_ATTRIBUTE_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}

# Streams where a consumer reads them: the event log feeds the projector/notifier Lambdas (each needs the new
# event only, never the old image: events are immutable).
STREAMS: dict[str, dynamodb.StreamViewType] = {names.EVENTS_TABLE.construct_id: dynamodb.StreamViewType.NEW_IMAGE}


def _attribute(attribute: names.Attribute) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=attribute.name, type=_ATTRIBUTE_TYPES[attribute.type])


class State(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        for spec in names.TABLES:
            table = dynamodb.Table(
                self,
                spec.construct_id,
                partition_key=_attribute(spec.partition_key),
                sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                # Encrypted at rest with the AWS-owned key: no key policy to keep in step with three runtimes.
                encryption=dynamodb.TableEncryption.DEFAULT,
                time_to_live_attribute=spec.ttl_attribute,
                stream=STREAMS.get(spec.construct_id),
                deletion_protection=True,
                removal_policy=RemovalPolicy.RETAIN,
            )
            for index in spec.local_indexes:
                table.add_local_secondary_index(
                    index_name=index.name,
                    sort_key=_attribute(index.sort_key),
                    projection_type=dynamodb.ProjectionType.ALL,
                )
            self.tables[spec.construct_id] = table

    def table(self, spec: names.TableSpec) -> dynamodb.Table:
        return self.tables[spec.construct_id]

    @property
    def names_by_placeholder(self) -> dict[str, str]:
        """TableSpec.placeholder -> physical name token, as ``names.message_workflow_substitutions`` wants."""
        return {spec.placeholder: self.table(spec).table_name for spec in names.TABLES}

    @property
    def environment(self) -> dict[str, str]:
        """TableSpec.env -> physical name token: the variables ``workflows.settings.Tables`` reads."""
        return {spec.env: self.table(spec).table_name for spec in names.TABLES}
