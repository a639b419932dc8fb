"""The projects table: one row per project, its configuration as JSON in ``config``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from workflows.models import Project

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

KEY_ATTRIBUTE = "projectId"


class ProjectsStore(Protocol):
    def get(self, project_id: str) -> Project | None: ...

    def save(self, project: Project) -> None: ...


class DynamoProjects:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._ddb = dynamodb
        self._table = table

    def get(self, project_id: str) -> Project | None:
        item = self._ddb.get_item(
            TableName=self._table, Key={KEY_ATTRIBUTE: {"S": project_id}}, ConsistentRead=True
        ).get("Item")
        return Project.model_validate_json(item["config"]["S"]) if item else None

    def save(self, project: Project) -> None:
        self._ddb.put_item(
            TableName=self._table,
            Item={KEY_ATTRIBUTE: {"S": project.projectId}, "config": {"S": project.model_dump_json()}},
        )


class InMemoryProjects:
    def __init__(self, *projects: Project) -> None:
        self.rows: dict[str, str] = {}
        for project in projects:
            self.save(project)

    def get(self, project_id: str) -> Project | None:
        config = self.rows.get(project_id)
        return Project.model_validate_json(config) if config else None

    def save(self, project: Project) -> None:
        self.rows[project.projectId] = project.model_dump_json()
