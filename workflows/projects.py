"""Projects as data: registering a site and its allowed senders (one user id per sender)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from workflows.models import PROJECT_ID_RE, Project
from workflows.stores.projects import DynamoProjects


def user_id_for(address: str) -> str:
    """Stable, readable and unique per address: ``alice-k3m9`` for alice@example.com."""
    address = address.strip().lower()
    local = re.sub(r"[^a-z0-9]+", "-", address.partition("@")[0]).strip("-")[:20] or "user"
    digest = hashlib.sha256(address.encode()).hexdigest()[:6]
    return f"{local}-{digest}"


def make_project(
    project_id: str,
    repo_url: str,
    allow: list[str],
    *,
    editor: str = "replace",
    build_command: str = "",
    output_dir: str = "",
    default_branch: str = "",
) -> Project:
    if not PROJECT_ID_RE.fullmatch(project_id):
        raise ValueError(f"project names are 2-40 characters of a-z, 0-9 and '-': {project_id!r}")
    senders = {a.strip().lower(): user_id_for(a) for a in allow if a.strip()}
    if not senders or any("@" not in a for a in senders):
        raise ValueError("--allow needs at least one email address")
    return Project(
        projectId=project_id,
        repoUrl=repo_url,
        defaultBranch=default_branch,
        editor=editor,
        buildCommand=build_command,
        outputDir=output_dir,
        senders=senders,
    )


def save_project(dynamodb: Any, table: str, project: Project) -> None:
    DynamoProjects(dynamodb, table).save(project)
