"""One command, start to finish: prepare the branch, edit, commit, build, publish the preview, push."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from container.worker.build import check_output_dir, run_build
from container.worker.editors import editor_for
from container.worker.preview import PreviewPublisher
from container.worker.workspace import Workspace
from workflows.errors import ProjectConfigError
from workflows.models import Command, CommandResult, CommandTimings, NormalisedMessage, Project

MAX_FILES_LISTED = 50
MAX_SUMMARY = 500
SUBJECT_LIMIT = 72


class _Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.laps: dict[str, int] = {}

    @contextmanager
    def lap(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.laps[name] = self.laps.get(name, 0) + int((time.monotonic() - start) * 1000)

    def timings(self) -> CommandTimings:
        return CommandTimings(
            prepareMs=self.laps.get("prepare", 0),
            editMs=self.laps.get("edit", 0),
            buildMs=self.laps.get("build", 0),
            publishMs=self.laps.get("publish", 0),
            totalMs=int((time.monotonic() - self.started) * 1000),
        )


def commit_message(instruction: str, thread_id: str, message_id: str) -> str:
    """Subject = the instruction's first line (≤ 72 chars), then the whole instruction, then trailers."""
    text = instruction.strip()
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "Edit by email")
    subject = first_line if len(first_line) <= SUBJECT_LIMIT else first_line[: SUBJECT_LIMIT - 1] + "…"
    return f"{subject}\n\n{text}\n\nThread: {thread_id}\nMessage: {message_id}\n"


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_consistent(project: Project, message: NormalisedMessage, command: Command) -> None:
    # A mismatch means the workflow paired the wrong records; editing anything would be worse than failing.
    if not (project.projectId == message.projectId == command.projectId) or message.threadId != command.threadId:
        raise ProjectConfigError(
            f"Command {command.messageId} does not match its project or message "
            f"({project.projectId}/{message.projectId}/{command.projectId}, {message.threadId}/{command.threadId})."
        )


def run_command(
    project: Project,
    message: NormalisedMessage,
    command: Command,
    *,
    workspace_root: Path,
    publisher: PreviewPublisher,
    identity: tuple[str, str],
    editor_timeout: float = 900,
    build_timeout: float = 900,
) -> CommandResult:
    _check_consistent(project, message, command)
    clock = _Stopwatch()
    # Configuration errors fail before any git work.
    editor = editor_for(project.editor, timeout=editor_timeout)
    check_output_dir(project.outputDir)
    # Only a build's output is disposable and off-limits to edits; without a build the output dir is the
    # site's own source and must stay editable.
    exclude = {project.outputDir} if project.buildCommand.strip() else set()
    workspace = Workspace(
        workspace_root, project.projectId, command.userId, project.repoUrl, project.defaultBranch, identity
    )
    try:
        with clock.lap("prepare"):
            workspace.prepare(command.branch, exclude=exclude)
        # A retried command (the previous attempt failed after committing, e.g. at upload or push) finds its
        # own commit on HEAD; editing again would fail ("nothing to change") or apply the edit twice.
        earlier = workspace.head_commit_for(command.messageId)
        if earlier is not None:
            sha, files = earlier
            summary = f"The change was already saved by an earlier attempt (commit {sha[:8]}); published it now."
        else:
            with clock.lap("edit"):
                outcome = editor.run(workspace.path, message.instruction, exclude)
                sha, files = workspace.commit(
                    commit_message(message.instruction, command.threadId, command.messageId), exclude
                )
            summary = outcome.summary
        with clock.lap("build"):
            site_dir = run_build(workspace.path, project.buildCommand, project.outputDir, build_timeout)
        with clock.lap("publish"):
            preview_url = publisher.publish(site_dir, project.projectId, command.threadId)
            workspace.push(command.branch)
    finally:
        workspace.close()
    return CommandResult(
        commit=sha,
        branch=command.branch,
        filesChanged=files[:MAX_FILES_LISTED],
        previewUrl=preview_url,
        summary=_bounded(summary, MAX_SUMMARY),
        timings=clock.timings(),
    )
