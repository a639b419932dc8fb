"""Synthesise the CDK app once per test session (synthesis is the slow part) and share what it produced.

No AWS account and no Docker: synth stages assets into a temporary cloud assembly and stops there.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# `cdk` is a top-level folder of the repository, not an installed package.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")

import aws_cdk as core  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from cdk.app import STACK_ID, build_app  # noqa: E402
from cdk.stacks.webordinary import WebOrdinaryStack  # noqa: E402

ACCOUNT = "123456789012"
REGION = "us-east-1"
INBOUND_DOMAIN = "mail.example.com"
ALERT_EMAIL = "ops@example.com"
WARM_POOL_SIZE = 2


def deploy_context(**overrides: Any) -> dict[str, Any]:
    """cdk.json's context (feature flags) plus the keys an operator passes with -c."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context.update(
        {
            "inboundDomain": INBOUND_DOMAIN,
            "alertEmail": ALERT_EMAIL,
            "warmPoolSize": str(WARM_POOL_SIZE),  # as `-c warmPoolSize=2` delivers it: a string
            # What `cdk deploy` would look up with credentials (and cache in cdk.context.json).
            f"availability-zones:account={ACCOUNT}:region={REGION}": [f"{REGION}a", f"{REGION}b", f"{REGION}c"],
        }
    )
    context.update(overrides)
    return context


@dataclass
class Synthesized:
    app: core.App
    stack: WebOrdinaryStack
    outdir: Path
    template: dict[str, Any]
    assertions: Template
    seconds: float

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == resource_type}

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.get_logical_id(construct.node.default_child))


def synth_or_explain(app: core.App, outdir: Path) -> None:
    """Synthesise; when validation fails (an unacknowledged cdk-nag error fails the synth itself, see the
    ``core:annotationsInValidationReport`` flag in cdk.json), fail with the violations rather than a file path."""
    try:
        app.synth()
    except RuntimeError as exc:
        report_file = outdir / "validation-report.json"
        if "ValidationFailed" not in str(exc) or not report_file.exists():
            raise
        report = json.loads(report_file.read_text())
        violations = [
            f"{plugin['pluginName']}: {violation['description'][:200]} at "
            + ", ".join(c["constructPath"] for c in violation["violatingConstructs"])
            for plugin in report["pluginReports"]
            for violation in plugin["violations"]
        ]
        pytest.fail("synth failed validation:\n" + "\n".join(violations), pytrace=False)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    started = time.perf_counter()
    app, stack = build_app(deploy_context(), outdir=str(outdir), env=core.Environment(account=ACCOUNT, region=REGION))
    synth_or_explain(app, outdir)
    seconds = time.perf_counter() - started
    template = json.loads((outdir / f"{STACK_ID}.template.json").read_text())
    yield Synthesized(app, stack, outdir, template, Template.from_stack(stack), seconds)
