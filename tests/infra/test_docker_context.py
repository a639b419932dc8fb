"""The worker image's build context is valid without building it: the Dockerfile copies files that the staged
context (exactly what `cdk deploy` hands Docker, after .dockerignore) contains, and its command imports."""

from __future__ import annotations

import importlib
import json
import shlex
from pathlib import Path

import pytest

from cdk import assets
from cdk.parts.workers import WORKSPACE_MOUNT
from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def _staged_context(synthesized: Synthesized) -> Path:
    manifest = json.loads((synthesized.outdir / "WebOrdinary.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["dockerFile"] == assets.WORKER_DOCKERFILE
    return synthesized.outdir / image["source"]["directory"]


def test_every_copy_source_is_in_the_staged_build_context(synthesized: Synthesized) -> None:
    context = _staged_context(synthesized)
    copies = [
        args
        for instruction, args in _instructions(assets.REPO_ROOT / assets.WORKER_DOCKERFILE)
        if instruction == "COPY"
    ]
    assert copies
    for args in copies:
        if args.startswith("--from="):
            continue  # from another build stage (Node's official image), not from the context
        *sources, _destination = shlex.split(args)
        for source in sources:
            assert not source.startswith("--"), f"unexpected COPY flag in {args!r}"
            assert (context / source).exists(), f"COPY {source}: not in the build context"
    # The context is the allow-list, nothing more: no virtualenv, git history, tests or cloud assemblies.
    top_level = {p.name for p in context.iterdir()}
    assert top_level <= {"pyproject.toml", "workflows", "lambdas", "container", ".dockerignore"}, top_level
    assert not list(context.rglob("__pycache__"))


def test_the_image_runs_the_worker_entry_point_as_a_non_root_user() -> None:
    instructions = _instructions(assets.REPO_ROOT / assets.WORKER_DOCKERFILE)
    (cmd,) = [json.loads(args) for instruction, args in instructions if instruction == "CMD"]
    assert cmd[:2] == ["python", "-m"]
    module = importlib.import_module(f"{cmd[2]}.__main__")
    assert callable(module.main)
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert any(instruction == "RUN" and WORKSPACE_MOUNT in args for instruction, args in instructions)
    *stages, base = [args for instruction, args in instructions if instruction == "FROM"]
    assert base.startswith("python:3.12")
    # The sites' builds need Node: the current LTS, copied from its official image.
    assert stages == ["node:24-bookworm-slim AS node"]
    assert any(
        instruction == "COPY" and args.startswith("--from=node /usr/local/bin/node")
        for instruction, args in instructions
    )
