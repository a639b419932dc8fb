"""The messages table: one row per key, and every key is built here.

| key                              | row                                 | written by                      |
| -------------------------------- | ----------------------------------- | ------------------------------- |
| ``ses#{SES message id}``         | intake's decision for that delivery | intake, after what explains it  |
| ``mid#{RFC Message-ID}``         | the thread a Message-ID belongs to  | intake; the workflow (replies)  |
| ``notice#{SES message id}``      | a notice to the sender was claimed  | intake, before sending it       |
| ``reply#{execution name}``       | the execution's reply was claimed   | the workflow, before sending it |
| ``budget#{kind}#{sender}#{day}`` | notices sent to a sender that day   | intake                          |

The workflow writes ``mid#`` and ``reply#`` rows too: its definition gets the prefixes from
``ASL_SUBSTITUTIONS`` (``${MessageIdKeyPrefix}``, ``${ReplyClaimKeyPrefix}``), so no prefix is spelled twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from workflows.adapters.stores._dynamo import condition_failed
from workflows.models import ExecutionInput, IntakeOutcome

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

KEY_ATTRIBUTE = "key"
DECISION_PREFIX = "ses#"
MESSAGE_ID_PREFIX = "mid#"
NOTICE_CLAIM_PREFIX = "notice#"
REPLY_CLAIM_PREFIX = "reply#"
NOTICE_BUDGET_PREFIX = "budget#"

ASL_SUBSTITUTIONS = {"MessageIdKeyPrefix": MESSAGE_ID_PREFIX, "ReplyClaimKeyPrefix": REPLY_CLAIM_PREFIX}

NoticeKind = Literal["refusal", "problem"]


def decision_key(ses_id: str) -> str:
    return f"{DECISION_PREFIX}{ses_id}"


def message_id_key(rfc_message_id: str) -> str:
    return f"{MESSAGE_ID_PREFIX}{rfc_message_id}"


def notice_claim_key(ses_id: str) -> str:
    return f"{NOTICE_CLAIM_PREFIX}{ses_id}"


def reply_claim_key(execution_name: str) -> str:
    return f"{REPLY_CLAIM_PREFIX}{execution_name}"


def notice_budget_key(kind: NoticeKind, sender: str, day: str) -> str:
    return f"{NOTICE_BUDGET_PREFIX}{kind}#{sender}#{day}"


class ThreadLink(BaseModel):
    """Where a Message-ID leads: a thread of a project."""

    model_config = ConfigDict(frozen=True)
    threadId: str
    projectId: str


class Decision(BaseModel):
    """What intake decided for one SES delivery; a redelivery reuses it instead of deciding again."""

    model_config = ConfigDict(frozen=True)
    accepted: bool
    executionName: str = ""
    input: ExecutionInput | None = None  # accepted: what the execution was (or will be) started with
    outcome: IntakeOutcome | None = None  # rejected: what intake answered


class MessagesStore(Protocol):
    def decision(self, ses_id: str) -> Decision | None: ...

    def remember_decision(self, ses_id: str, decision: Decision) -> None: ...

    def link_message_id(self, rfc_message_id: str, link: ThreadLink) -> bool:
        """Map a Message-ID to a thread. First writer wins: False when the id already leads somewhere."""
        ...

    def thread_of(self, rfc_message_id: str) -> ThreadLink | None: ...

    def claim_notice(self, ses_id: str, reason: str) -> bool:
        """True once per SES message: whoever gets True sends the notice."""
        ...

    def take_notice_budget(self, kind: NoticeKind, sender: str, day: str, limit: int) -> bool:
        """One unit of a sender's daily budget; False when ``limit`` were already taken that day."""
        ...


class DynamoMessages:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._ddb = dynamodb
        self._table = table

    def _get(self, key: str) -> dict[str, str] | None:
        item = self._ddb.get_item(TableName=self._table, Key={KEY_ATTRIBUTE: {"S": key}}, ConsistentRead=True).get(
            "Item"
        )
        if item is None:
            return None
        return {name: value["S"] for name, value in item.items() if "S" in value}

    def _put_new(self, key: str, attrs: dict[str, str]) -> bool:
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={KEY_ATTRIBUTE: {"S": key}, **{name: {"S": value} for name, value in attrs.items()}},
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": KEY_ATTRIBUTE},
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def decision(self, ses_id: str) -> Decision | None:
        item = self._get(decision_key(ses_id))
        return Decision.model_validate_json(item["decision"]) if item else None

    def remember_decision(self, ses_id: str, decision: Decision) -> None:
        self._ddb.put_item(
            TableName=self._table,
            Item={KEY_ATTRIBUTE: {"S": decision_key(ses_id)}, "decision": {"S": decision.model_dump_json()}},
        )

    def link_message_id(self, rfc_message_id: str, link: ThreadLink) -> bool:
        return self._put_new(message_id_key(rfc_message_id), link.model_dump())

    def thread_of(self, rfc_message_id: str) -> ThreadLink | None:
        item = self._get(message_id_key(rfc_message_id))
        if not item or "threadId" not in item or "projectId" not in item:
            return None
        return ThreadLink(threadId=item["threadId"], projectId=item["projectId"])

    def claim_notice(self, ses_id: str, reason: str) -> bool:
        return self._put_new(notice_claim_key(ses_id), {"reason": reason})

    def take_notice_budget(self, kind: NoticeKind, sender: str, day: str, limit: int) -> bool:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": notice_budget_key(kind, sender, day)}},
                UpdateExpression="ADD sent :one",
                ConditionExpression="attribute_not_exists(sent) OR sent < :limit",
                ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(limit)}},
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True


class InMemoryMessages:
    """The fake: the same contract, in a dict (tests; never shipped to a deployment)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, str]] = {}
        self._budgets: dict[str, int] = {}

    def decision(self, ses_id: str) -> Decision | None:
        row = self.rows.get(decision_key(ses_id))
        return Decision.model_validate_json(row["decision"]) if row else None

    def remember_decision(self, ses_id: str, decision: Decision) -> None:
        self.rows[decision_key(ses_id)] = {"decision": decision.model_dump_json()}

    def link_message_id(self, rfc_message_id: str, link: ThreadLink) -> bool:
        key = message_id_key(rfc_message_id)
        if key in self.rows:
            return False
        self.rows[key] = link.model_dump()
        return True

    def thread_of(self, rfc_message_id: str) -> ThreadLink | None:
        row = self.rows.get(message_id_key(rfc_message_id))
        return ThreadLink.model_validate(row) if row else None

    def claim_notice(self, ses_id: str, reason: str) -> bool:
        key = notice_claim_key(ses_id)
        if key in self.rows:
            return False
        self.rows[key] = {"reason": reason}
        return True

    def take_notice_budget(self, kind: NoticeKind, sender: str, day: str, limit: int) -> bool:
        key = notice_budget_key(kind, sender, day)
        if self._budgets.get(key, 0) >= limit:
            return False
        self._budgets[key] = self._budgets.get(key, 0) + 1
        return True
