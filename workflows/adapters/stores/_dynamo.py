"""What every DynamoDB-backed store shares: telling a failed condition from every other error."""

from __future__ import annotations

from botocore.exceptions import ClientError


def condition_failed(exc: ClientError) -> bool:
    """The write was refused by its ConditionExpression (a decision, not a failure)."""
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")
