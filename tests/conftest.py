from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach a real AWS account: fake credentials and region unless a test sets its own."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        if key not in os.environ:
            monkeypatch.setenv(key, value)


def example_workflow_substitutions() -> dict[str, str]:
    """The message workflow's substitution map with made-up values: for tests that read the definition."""
    from workflows import names

    return names.message_workflow_substitutions(
        table_names={spec.placeholder: spec.local_name for spec in names.TABLES},
        claim_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/claims",
        dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/dead-letters",
        cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/workers",
        task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/worker:1",
        subnets=("subnet-1", "subnet-2"),
        security_group="sg-1",
        tuning=names.WorkflowTuning(),
        reply_function_arn=names.function_arn(names.REPLY_FUNCTION, "us-east-1", "123456789012"),
    )
