"""The code CDK ships: one Lambda code asset and one worker image, both cut from the repository root.

Synth only stages these (copies files into ``cdk.out``); it never runs Docker or pip. Both filters are
allow-lists anchored at the root, so staging never walks ``.venv`` or ``.git`` and stays fast.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, IgnoreMode, ILocalBundling
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


LAYER_DIR = Path(__file__).parent / "layer"
# Import names of the packages in layer/requirements.txt (pure Python, no dependencies of their own).
LAYER_PACKAGES: tuple[str, ...] = ("mailparser_reply",)


@jsii.implements(ILocalBundling)
class CopyInstalledPackages:
    """Bundle the layer without Docker or network: copy the packages as installed in this environment, which
    pyproject pins for the tests too, so the Lambda runs exactly the code the tests ran."""

    def __init__(self, packages: tuple[str, ...]) -> None:
        self.packages = packages

    def try_bundle(self, output_dir: str, *args: Any, **options: Any) -> bool:  # jsii passes the options
        target = Path(output_dir) / "python"
        for package in self.packages:
            spec = importlib.util.find_spec(package)
            if spec is None or spec.origin is None:
                return False  # not installed here: fall back to Docker and pip
            shutil.copytree(
                Path(spec.origin).parent, target / package, ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]")
            )
        return True


def dependencies_layer_code() -> lambda_.Code:
    """A layer with the handlers' extra dependencies (``python/`` is on the Lambda runtime's path)."""
    return lambda_.Code.from_asset(
        str(LAYER_DIR),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
            command=["bash", "-c", "pip install -r requirements.txt -t /asset-output/python"],
            local=CopyInstalledPackages(LAYER_PACKAGES),
        ),
    )
