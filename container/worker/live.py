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
from workflows.commands import Keyword
from workflows.models import Command, CommandResult, LiveChange, Project


@dataclass(frozen=True)
class LiveHistory:
    """From the thread's events (``workflows.events.ThreadState``)."""

    shown_commit: str = ""  # the change the owner last saw in a reply
    last_publish: LiveChange | None = None  # the thread's publish, while it is its last step


@dataclass
class _Deployer:
    """One PUBLISH or UNDO's builds and deploys, timed on the command's stopwatch."""

    workspace: Workspace
    project: Project
    publisher: PreviewPublisher
    timeout: float
    cancel: Cancellation
    clock: _Stopwatch
    cache: Path

    def build(self, commit: str) -> Path:
        """Check out ``commit`` (detached: no branch moves) and build it; the built site's folder."""
        with self.clock.lap("build"):
            self.workspace.repo.git.checkout("-q", "-f", "--detach", commit)
            plan = plan_build(self.workspace.path, self.project.buildCommand, self.project.outputDir)
            return run_build(self.workspace.path, plan, self.timeout, self.cancel, self.cache).path

    def deploy_live(self, commit: str) -> str:
        site = self.build(commit)
        with self.clock.lap("publish"):
            return self.publisher.publish_site(site, self.project.projectId).url

    def deploy_preview(self, thread_id: str, commit: str) -> tuple[str, str]:
        site = self.build(commit)
        with self.clock.lap("publish"):
            preview = self.publisher.publish(site, self.project.projectId, thread_id, commit)
        return preview.url, preview.version_url


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
    workspace = Workspace.for_command(workspace_root, project, command.userId, identity, git_token)
    deployer = _Deployer(workspace, project, publisher, build_timeout, cancel, clock, cache)
    try:
        with clock.lap("prepare"):
            workspace.prepare(command.branch, exclude=exclude, message_id=command.messageId, take_default=False)
        if keyword == "publish":
            live = _publish(deployer, command, history)
            commit = history.shown_commit
            # A stale PUBLISH shows the newer change the owner has not seen.
            shown = live.newerCommit if live.outcome == "stale" else commit
            preview_url, version_url = publisher.urls(project.projectId, command.threadId, shown) if shown else ("", "")
            files: list[str] = []
        else:
            live, commit, preview_url, version_url, files = _undo(deployer, command, history)
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


def _publish(deployer: _Deployer, command: Command, history: LiveHistory) -> LiveChange:
    outcome = publishing.publish(deployer.workspace, command.branch, history.shown_commit)
    change = LiveChange(
        outcome=outcome.kind,
        liveCommit=outcome.live,
        previousCommit=outcome.previous,
        newerCommit=outcome.newer,
        conflicts=outcome.conflicts,
    )
    if outcome.kind not in ("published", "already-live"):
        return change
    return change.model_copy(update={"liveUrl": deployer.deploy_live(outcome.live)})


def _undo(deployer: _Deployer, command: Command, history: LiveHistory) -> tuple[LiveChange, str, str, str, list[str]]:
    published = history.last_publish
    before = (
        publishing.PublishOutcome(kind="published", live=published.liveCommit, previous=published.previousCommit)
        if published is not None and published.liveCommit and published.previousCommit
        else None
    )
    outcome = publishing.undo(deployer.workspace, command.branch, command.messageId, command.threadId, before)
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
    preview_url, version_url = deployer.deploy_preview(command.threadId, outcome.commit)
    if change.rolledBack:
        change = change.model_copy(update={"liveUrl": deployer.deploy_live(outcome.live)})
    return change, outcome.commit, preview_url, version_url, outcome.undid_files
