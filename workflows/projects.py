"""Projects as data: registering a site and its allowed senders (one user id per sender)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import ValidationError

from workflows.adapters.stores.projects import DynamoProjects
from workflows.models import PROJECT_ID_RE, Project


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
    agent_model: str = "",
    agent_max_turns: int = 30,
    monthly_budget_usd: float | None = None,
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
        agentModel=agent_model,
        agentMaxTurns=agent_max_turns,
        monthlyBudgetUsd=monthly_budget_usd,
    )


# What `webordinary project set NAME key=value` may change, and how each value is read from the command line.
SETTABLE: dict[str, str] = {
    "repoUrl": "text",
    "defaultBranch": "text",
    "editor": "text",
    "buildCommand": "text",
    "outputDir": "text",
    "agentModel": "text",
    "agentMaxTurns": "number",
    "publishWords": "list",
    "undoWords": "list",
    "continueWords": "list",
    "monthlyBudgetUsd": "money",
    "continueUsd": "money",
}


def with_settings(project: Project, assignments: list[str]) -> Project:
    """``project`` with ``key=value`` assignments applied (lists comma-separated), validated as a whole;
    ValueError in plain words for an unknown key or a bad value."""
    changes: dict[str, object] = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        key = key.strip()
        if not equals or key not in SETTABLE:
            raise ValueError(f"expected key=value with key one of {', '.join(sorted(SETTABLE))}: {assignment!r}")
        kind = SETTABLE[key]
        if kind == "number":
            if not value.strip().isdigit():
                raise ValueError(f"{key} takes a whole number: {value!r}")
            changes[key] = int(value)
        elif kind == "money":
            amount = value.strip().removeprefix("$")
            if amount.lower() in ("", "none", "off"):
                changes[key] = None  # no cap (only the monthly budget may be switched off)
                continue
            try:
                changes[key] = float(amount)
            except ValueError:
                raise ValueError(f"{key} takes an amount in dollars, or 'none': {value!r}") from None
        elif kind == "list":
            changes[key] = [word.strip() for word in value.split(",") if word.strip()]
        else:
            changes[key] = value.strip()
    try:
        return Project.model_validate({**project.model_dump(), **changes})
    except ValidationError as exc:
        raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc


def save_project(dynamodb: Any, table: str, project: Project) -> None:
    DynamoProjects(dynamodb, table).save(project)
