"""PUBLISH and UNDO as commands: decide in git (``publishing``), then build and deploy what changed.

PUBLISH deploys the default branch's new commit as the project's live site. UNDO redeploys the thread's
preview with the change taken back and, when it rolled the live site back too, redeploys the live site. What
the thread's events say (the change the owner last saw, the publish that was its last step) comes in as
:class:`LiveHistory`; the result's ``live`` says what happened, and the reply puts it in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from container.worker import publishing
from container.worker.build import check_output_dir, plan_build, run_build
from container.worker.cancel import Cancellation
from container.worker.job import BUILD_CACHE, _Stopwatch
from container.worker.preview import PreviewPublisher
from container.worker.workspace import Workspace
from workflows import previews
from workflows.commands import Keyword
from workflows.models import Command, CommandResult, LiveChange, Project


@dataclass(frozen=True)
class LiveHistory:
    """From the thread's events (``workflows.events.ThreadState``)."""

    shown_commit: str = ""  # the change the owner last saw in a reply
    last_publish: LiveChange | None = None  # the thread's publish, while it is its last step


def _build(
    workspace: Workspace, project: Project, commit: str, timeout: float, cancel: Cancellation, cache: Path
) -> Path:
    """Check out ``commit`` (detached: no branch moves) and build it; the built site's folder."""
    workspace.repo.git.checkout("-q", "-f", "--detach", commit)
    plan = plan_build(workspace.path, project.buildCommand, project.outputDir)
    return run_build(workspace.path, plan, timeout, cancel, cache).path


def run_keyword(
    keyword: Keyword,
    project: Project,
    command: Command,
    history: LiveHistory,
    *,
    workspace_root: Path,
    publisher: PreviewPublisher,
    identity: tuple[str, str],
    git_token: str = "",
    build_timeout: float = 900,
    cancel: Cancellation | None = None,
) -> CommandResult:
    cancel = cancel or Cancellation()
    clock = _Stopwatch()
    cache = workspace_root / BUILD_CACHE
    check_output_dir(project.outputDir)
    exclude = {project.outputDir} if project.buildCommand.strip() and project.outputDir.strip() else set()
    workspace = Workspace(
        workspace_root,
        project.projectId,
        command.userId,
        project.repoUrl,
        project.defaultBranch,
        identity,
        git_token=git_token,
    )
    try:
        with clock.lap("prepare"):
            workspace.prepare(command.branch, exclude=exclude, message_id=command.messageId, take_default=False)
        if keyword == "publish":
            live = _publish(workspace, project, command, history, publisher, build_timeout, cancel, clock, cache)
            commit = history.shown_commit
            # A stale PUBLISH shows the newer change the owner has not seen.
            shown = live.newerCommit if live.outcome == "stale" else commit
            preview_url, version_url = _preview_urls(publisher, project.projectId, command.threadId, shown)
            files: list[str] = []
        else:
            live, commit, preview_url, version_url, files = _undo(
                workspace, project, command, history, publisher, build_timeout, cancel, clock, cache
            )
    finally:
        workspace.close()
    return CommandResult(
        commit=commit,
        branch=command.branch,
        filesChanged=files,
        previewUrl=preview_url,
        versionUrl=version_url,
        summary="",
        kind=keyword,
        timings=clock.timings(),
        keptAside=workspace.kept_aside,
        live=live,
    )


def _preview_urls(publisher: PreviewPublisher, project_id: str, thread_id: str, commit: str) -> tuple[str, str]:
    """The thread's preview and ``commit``'s own, without publishing anything (they exist already)."""
    template = getattr(publisher, "base_url", "")
    if not template or previews.LABEL_PLACEHOLDER not in template:
        return "", ""
    thread = previews.url(template, previews.thread_label(project_id, thread_id))
    version = previews.url(template, previews.commit_label(project_id, commit)) if commit else ""
    return thread, version


def _publish(
    workspace: Workspace,
    project: Project,
    command: Command,
    history: LiveHistory,
    publisher: PreviewPublisher,
    timeout: float,
    cancel: Cancellation,
    clock: _Stopwatch,
    cache: Path,
) -> LiveChange:
    outcome = publishing.publish(workspace, command.branch, history.shown_commit)
    change = LiveChange(
        outcome=outcome.kind,
        liveCommit=outcome.live,
        previousCommit=outcome.previous,
        newerCommit=outcome.newer,
        conflicts=outcome.conflicts,
    )
    if outcome.kind not in ("published", "already-live"):
        return change
    with clock.lap("build"):
        site = _build(workspace, project, outcome.live, timeout, cancel, cache)
    with clock.lap("publish"):
        deployed = publisher.publish_site(site, project.projectId)
    return change.model_copy(update={"liveUrl": deployed.url})


def _undo(
    workspace: Workspace,
    project: Project,
    command: Command,
    history: LiveHistory,
    publisher: PreviewPublisher,
    timeout: float,
    cancel: Cancellation,
    clock: _Stopwatch,
    cache: Path,
) -> tuple[LiveChange, str, str, str, list[str]]:
    published = history.last_publish
    before = (
        publishing.PublishOutcome(kind="published", live=published.liveCommit, previous=published.previousCommit)
        if published is not None and published.liveCommit and published.previousCommit
        else None
    )
    outcome = publishing.undo(workspace, command.branch, command.messageId, command.threadId, before)
    change = LiveChange(
        outcome=outcome.kind,
        liveCommit=outcome.live,
        undid=outcome.undid,
        undidFiles=outcome.undid_files,
        conflicts=outcome.conflicts,
        rolledBack=bool(outcome.live) and outcome.kind == "undone",
    )
    if outcome.kind != "undone":
        return change, "", "", "", []
    with clock.lap("build"):
        site = _build(workspace, project, outcome.commit, timeout, cancel, cache)
    with clock.lap("publish"):
        preview = publisher.publish(site, project.projectId, command.threadId, outcome.commit)
    if change.rolledBack:
        with clock.lap("build"):
            live_site = _build(workspace, project, outcome.live, timeout, cancel, cache)
        with clock.lap("publish"):
            deployed = publisher.publish_site(live_site, project.projectId)
        change = change.model_copy(update={"liveUrl": deployed.url})
    return change, outcome.commit, preview.url, preview.version_url, outcome.undid_files
