"""The code CDK ships: one Lambda code asset and one worker image, both cut from the repository root.

Synth only stages these (copies files into ``cdk.out``); it never runs Docker or pip. Both filters are
allow-lists anchored at the root, so staging never walks ``.venv`` or ``.git`` and stays fast.
"""

from __future__ import annotations

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_lambda as lambda_

from workflows import names

REPO_ROOT = names.REPO_ROOT
WORKER_DOCKERFILE = "container/Dockerfile"  # relative to REPO_ROOT, the image's build context
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

# Handlers import ``lambdas.*`` and ``workflows.*`` from the zip's root. The local stack (moto) is never
# imported by a handler and pulls in packages the Lambda runtime does not have, so it stays out.
LAMBDA_CODE_EXCLUDE: tuple[str, ...] = (
    "/*",
    "!/workflows/",
    "!/lambdas/",
    "/workflows/local/",
    "__pycache__/",
    "*.py[cod]",
)


def lambda_code() -> lambda_.Code:
    """The handlers' code: boto3 comes with the runtime, powertools and pydantic with the Powertools layer."""
    return lambda_.Code.from_asset(str(REPO_ROOT), exclude=list(LAMBDA_CODE_EXCLUDE), ignore_mode=IgnoreMode.GIT)


def worker_image() -> ecs.ContainerImage:
    """The worker image, built by ``cdk deploy`` from ``container/Dockerfile``.

    CDK reads the root ``.dockerignore`` itself (Docker semantics), so the staged context is exactly what the
    Docker engine would be sent.
    """
    return ecs.ContainerImage.from_asset(str(REPO_ROOT), file=WORKER_DOCKERFILE)
