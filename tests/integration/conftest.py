from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflows.local.stack import EmbeddedStack, StackInfo
from workflows.names import WorkflowTuning
from workflows.settings import WorkerSettings

# The secrets CDK gives every worker task (tests/integration/test_claude_code_flow.py checks where they go).
AGENT_API_KEY = "sk-ant-embedded-stack-key"
GIT_TOKEN = "ghp_embeddedstackgittoken"
WORKER_SECRETS = {
    WorkerSettings.env_map()["agent_api_key"]: AGENT_API_KEY,
    WorkerSettings.env_map()["git_token"]: GIT_TOKEN,
}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """One embedded stack for the whole session (moto's port and patches are process-wide)."""
    saved = dict(os.environ)
    state = tmp_path_factory.mktemp("stack")
    # Workers find `claude` on their PATH: here, the fake that speaks the real CLI's protocol (tests/fakes).
    os.environ["PATH"] = f"{Path(__file__).parents[1] / 'fakes'}{os.pathsep}{os.environ.get('PATH', '')}"
    # Short heartbeats so lost workers are noticed in seconds, not minutes.
    embedded = EmbeddedStack(
        state_dir=state,
        warm_pool_size=1,
        worker_idle_seconds=30,
        worker_heartbeat_seconds=1,
        tuning=WorkflowTuning(command_heartbeat_seconds=6, claim_timeout_seconds=2, max_attempts=3),
        worker_secrets=WORKER_SECRETS,
    )
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def info(stack: EmbeddedStack) -> StackInfo:
    assert stack.info is not None
    stack.info.apply()
    return stack.info


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    path = tmp_path / "repos"
    path.mkdir()
    return path
