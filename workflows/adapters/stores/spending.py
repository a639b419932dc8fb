"""The spending table: what each project's coding agent cost in a month, and what CONTINUE allowed on top.

One row per project and calendar month (UTC), keyed ``{project}#{YYYY-MM}``. The worker adds each agent run's
cost as soon as the run's result line reports it (an atomic ADD: two conversations of one project may run at
once, on two workers) and reads the row before a run, to cap the run at what is left of the month's
allowance. CONTINUE raises the allowance once per message: the message id is kept in the row, so a retried
CONTINUE does not allow twice. Per-change costs stay in each thread's events (``CommandSucceeded.agent``);
this row is the project-wide sum the budget needs, which no thread's fold can see.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from workflows.adapters.stores._dynamo import condition_failed

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

KEY_ATTRIBUTE = "projectMonth"


def month_of(at: datetime | None = None) -> str:
    """The budget month an agent run belongs to: ``2026-12`` (UTC)."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m")


def spending_key(project_id: str, month: str) -> str:
    return f"{project_id}#{month}"


class MonthSpending(BaseModel):
    """A project's month: what its agent runs cost, and what CONTINUE allowed beyond the budget."""

    model_config = ConfigDict(frozen=True)
    projectId: str
    month: str
    spentUsd: float = 0.0
    extraUsd: float = 0.0  # allowed by CONTINUE, on top of the project's monthly budget
    runs: int = 0

    def allowance(self, budget_usd: float) -> float:
        return budget_usd + self.extraUsd

    def left(self, budget_usd: float) -> float:
        """What the agent may still spend this month (never negative)."""
        return max(0.0, round(self.allowance(budget_usd) - self.spentUsd, 6))


class SpendingStore(Protocol):
    def get(self, project_id: str, month: str) -> MonthSpending: ...

    def charge(self, project_id: str, month: str, usd: float) -> None:
        """Add one agent run's cost (a run that cost nothing still counts as a run)."""
        ...

    def allow_more(self, project_id: str, month: str, usd: float, message_id: str) -> bool:
        """Raise the month's allowance by ``usd`` for CONTINUE message ``message_id``; False (and nothing
        changes) when that message already did."""
        ...


def _usd(value: float) -> str:
    # DynamoDB numbers are decimal: keep micro-dollars, never a float's binary tail.
    return str(Decimal(str(round(value, 6))))


def _number(item: dict[str, Any], name: str) -> float:
    return float(item[name]["N"]) if name in item else 0.0


class DynamoSpending:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._ddb = dynamodb
        self._table = table

    def get(self, project_id: str, month: str) -> MonthSpending:
        item = self._ddb.get_item(
            TableName=self._table, Key={KEY_ATTRIBUTE: {"S": spending_key(project_id, month)}}, ConsistentRead=True
        ).get("Item", {})
        return MonthSpending(
            projectId=project_id,
            month=month,
            spentUsd=_number(item, "spentUsd"),
            extraUsd=_number(item, "extraUsd"),
            runs=int(_number(item, "runs")),
        )

    def charge(self, project_id: str, month: str, usd: float) -> None:
        self._ddb.update_item(
            TableName=self._table,
            Key={KEY_ATTRIBUTE: {"S": spending_key(project_id, month)}},
            UpdateExpression="ADD spentUsd :usd, runs :one",
            ExpressionAttributeValues={":usd": {"N": _usd(max(0.0, usd))}, ":one": {"N": "1"}},
        )

    def allow_more(self, project_id: str, month: str, usd: float, message_id: str) -> bool:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": spending_key(project_id, month)}},
                UpdateExpression="ADD extraUsd :usd, continuedBy :message",
                ConditionExpression="attribute_not_exists(continuedBy) OR NOT contains(continuedBy, :id)",
                ExpressionAttributeValues={
                    ":usd": {"N": _usd(max(0.0, usd))},
                    ":message": {"SS": [message_id]},
                    ":id": {"S": message_id},
                },
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True


class InMemorySpending:
    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}

    def _row(self, project_id: str, month: str) -> dict[str, Any]:
        return self._rows.setdefault(
            spending_key(project_id, month), {"spentUsd": 0.0, "extraUsd": 0.0, "runs": 0, "continuedBy": set()}
        )

    def get(self, project_id: str, month: str) -> MonthSpending:
        row = self._row(project_id, month)
        return MonthSpending(
            projectId=project_id,
            month=month,
            spentUsd=round(row["spentUsd"], 6),
            extraUsd=round(row["extraUsd"], 6),
            runs=row["runs"],
        )

    def charge(self, project_id: str, month: str, usd: float) -> None:
        row = self._row(project_id, month)
        row["spentUsd"] += max(0.0, usd)
        row["runs"] += 1

    def allow_more(self, project_id: str, month: str, usd: float, message_id: str) -> bool:
        row = self._row(project_id, month)
        if message_id in row["continuedBy"]:
            return False
        row["continuedBy"].add(message_id)
        row["extraUsd"] += max(0.0, usd)
        return True
