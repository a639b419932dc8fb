"""cdk-nag's AwsSolutions and Serverless packs find nothing unacknowledged, and every acknowledgement says why."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from cdk.parts.nag import MIN_REASON_LENGTH
from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra

NAG_RULE = re.compile(r"^(AwsSolutions|Serverless)-[A-Za-z0-9]+$")


def _messages(entries: list[Any]) -> list[str]:
    return [f"{entry.id}: {entry.entry.data}" for entry in entries]


def test_no_unacknowledged_nag_errors(synthesized: Synthesized) -> None:
    errors = Annotations.from_stack(synthesized.stack).find_error("*", Match.string_like_regexp(".*"))
    assert not errors, "\n".join(_messages(errors))


def test_no_unacknowledged_nag_warnings(synthesized: Synthesized) -> None:
    warnings = Annotations.from_stack(synthesized.stack).find_warning(
        "*", Match.string_like_regexp(r"^(AwsSolutions|Serverless)-")
    )
    assert not warnings, "\n".join(_messages(warnings))


def test_every_acknowledgement_names_a_rule_and_a_reason(synthesized: Synthesized) -> None:
    acknowledged = 0
    for logical_id, resource in synthesized.template["Resources"].items():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            acknowledged += 1
            assert NAG_RULE.match(rule["id"]), f"{logical_id}: {rule['id']}"
            assert len(rule.get("reason", "")) >= MIN_REASON_LENGTH, f"{logical_id}: {rule}"
    assert acknowledged, "expected the acknowledgements to be recorded in the template metadata"
