from __future__ import annotations

import os
from collections.abc import Iterator
from unittest import mock

import pytest
from moto import mock_aws

from workflows.adapters.aws import reset_clients


@pytest.fixture(scope="module")
def in_process_aws() -> Iterator[None]:
    """moto in this process, whatever endpoint an earlier test (the embedded stack) left in the environment:
    fast tests never talk to a server."""
    cleared = {key: "" for key in os.environ if key.startswith("AWS_ENDPOINT_URL")}
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": "us-east-1", **cleared}):
        for key in cleared:
            del os.environ[key]
        reset_clients()
        # Step Functions runs what it is given (as on the embedded stack), so executions end.
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            yield
    reset_clients()
