"""The CDK app: ``cdk deploy`` runs ``python3 -m cdk.app`` (cdk.json). See cdk/README.md for the context keys."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import aws_cdk as core

from cdk.config import DeployConfig
from cdk.parts import nag
from cdk.stacks.webordinary import WebOrdinaryStack

STACK_ID = "WebOrdinary"


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    outdir: str | None = None,
    env: core.Environment | None = None,
) -> tuple[core.App, WebOrdinaryStack]:
    """The app and its one stack. ``context`` is merged over cdk.json's (the CLI passes that itself)."""
    app = core.App(context=dict(context) if context else None, outdir=outdir)
    config = DeployConfig.from_node(app.node)
    # The CLI sets CDK_DEFAULT_* from the credentials it deploys with; without them the stack is region-agnostic.
    default_env = core.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    stack = WebOrdinaryStack(
        app,
        STACK_ID,
        config=config,
        env=env or default_env,
        description="WebOrdinary: edit your website by email (SES -> Step Functions -> ECS workers)",
    )
    core.Tags.of(app).add("application", "webordinary")
    if config.nag:
        nag.apply_packs(app)
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
