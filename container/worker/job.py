"""One command, start to finish: prepare the branch, edit, commit, build, publish the preview, push."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

from container.worker.attachments import Fetch, prepare_uploads
from container.worker.before import before_pictures
from container.worker.build import check_output_dir, plan_build, run_build
from container.worker.cancel import Cancellation, CommandCancelledError, Interruption
from container.worker.editors import AgentConfig, Allowance, EditOutcome, editor_for
from container.worker.preview import PreviewPublisher, PublishedPreview
from container.worker.screenshot import ScreenshotError, screenshots
from container.worker.workspace import INTERRUPTED_TRAILER, PUSH_ATTEMPTS, Workspace
from workflows import previews, replies
from workflows.errors import (
    BuildFailedError,
    NothingToChangeError,
    PreviewUploadError,
    ProjectConfigError,
    PushFailedError,
    WebOrdinaryError,
    WorkerAbandonedError,
    WorkerInterruptedError,
)
from workflows.models import (
    AgentUsage,
    BudgetPause,
    Command,
    CommandResult,
    CommandTimings,
    NormalisedMessage,
    Project,
    Screenshot,
)
from workflows.text import bounded

MAX_FILES_LISTED = 50
MAX_SUMMARY = 500
SUBJECT_LIMIT = 72
BUILD_CACHE = ".cache"  # under the workspace root: dependency installs, shared by every checkout there


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
            commitMs=self.laps.get("commit", 0),
            buildMs=self.laps.get("build", 0),
            publishMs=self.laps.get("publish", 0),
            screenshotMs=self.laps.get("screenshot", 0),
            totalMs=int((time.monotonic() - self.started) * 1000),
        )


def commit_message(instruction: str, thread_id: str, message_id: str) -> str:
    """Subject = the instruction's first line (≤ 72 chars), then the whole instruction, then trailers."""
    text = instruction.strip()
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "Edit by email")
    subject = first_line if len(first_line) <= SUBJECT_LIMIT else first_line[: SUBJECT_LIMIT - 1] + "…"
    return f"{subject}\n\n{text}\n\nThread: {thread_id}\nMessage: {message_id}\n"


def _check_consistent(project: Project, message: NormalisedMessage, command: Command) -> None:
    # A mismatch means the workflow paired the wrong records; editing anything would be worse than failing.
    if not (project.projectId == message.projectId == command.projectId) or message.threadId != command.threadId:
        raise ProjectConfigError(
            f"Command {command.messageId} does not match its project or message "
            f"({project.projectId}/{message.projectId}/{command.projectId}, {message.threadId}/{command.threadId})."
        )


# CONTINUE's instruction: the paused change's own instruction follows, after a blank line.
CONTINUE_PROMPT = (
    "Carry on with the change you were making when your spending allowance ran out; the owner has allowed more. "
    "What you did so far is committed on this branch. The change asked:"
)
CARRIED_OVER_HEADER = (
    "Your previous request in this conversation was interrupted by this one; its partial work is committed on "
    "this branch. It asked:"
)


def save_partial_work(
    workspace: Workspace,
    message: NormalisedMessage,
    command: Command,
    exclude: set[str],
    interruption: Interruption,
) -> WorkerInterruptedError:
    """Commit whatever the interrupted command left in the checkout as a labelled WIP commit on its own
    branch and push it, so nothing is lost; the returned error tells the workflow where it is."""
    wip: str | None = None
    pushed = False
    try:
        wip, _ = workspace.commit(wip_message(message.instruction, command, interruption), exclude)
    except NothingToChangeError:
        earlier = workspace.head_commit_for(command.messageId)  # interrupted after its own commit
        wip = earlier[0] if earlier else None
    except WebOrdinaryError:
        wip = None
    if wip is not None:
        try:
            workspace.push(command.branch)
            pushed = True
        except PushFailedError:
            pushed = False  # still committed on the persistent workspace; the next command pushes it
    return WorkerInterruptedError.describe(
        interrupted_by=interruption.by_message,
        by_thread=interruption.by_thread,
        same_thread=interruption.by_thread == command.threadId,
        stop=interruption.stop,
        wip_commit=wip,
        pushed=pushed,
        branch=command.branch,
    )


def wip_message(instruction: str, command: Command, interruption: Interruption) -> str:
    first = instruction.strip().splitlines()[0] if instruction.strip() else "(no instruction)"
    return (
        f"WIP (interrupted): {bounded(first, 52)}\n\n"
        f"Partial work of a request that was interrupted by message {interruption.by_message}.\n\n"
        # Not "Message:": that trailer marks a command's finished commit, which a retry would publish as is.
        f"Thread: {command.threadId}\nWIP-For: {command.messageId}\n{INTERRUPTED_TRAILER}: {interruption.by_message}"
    )


def take_screenshots(
    site: Path,
    files: list[str],
    browser: str | None,
    publisher: PreviewPublisher,
    project: Project,
    commit: str,
    cancel: Cancellation,
    before: Callable[[list[str]], dict[str, bytes]] | None = None,
) -> tuple[list[Screenshot], str]:
    """Pictures of the pages the change touched (and, from ``before``, the same pages before it), stored for the
    reply; or none, and why in plain words. A command never fails for want of a picture."""
    try:
        shots = screenshots(site, files, browser, cancel=cancel)
        earlier = before([shot.page for shot in shots]) if before is not None and shots else {}
        stored = []
        for index, shot in enumerate(shots, 1):
            key = previews.screenshot_key(project.projectId, commit, index)
            publisher.store_screenshot(key, shot.png)
            before_key = ""
            if shot.page in earlier:
                before_key = previews.screenshot_key(project.projectId, commit, f"{index}-before")
                publisher.store_screenshot(before_key, earlier[shot.page])
            stored.append(Screenshot(page=shot.page, key=key, beforeKey=before_key))
    except ScreenshotError as exc:
        return [], str(exc)
    except PreviewUploadError:
        return [], "the picture could not be stored"
    return stored, ""


def _usage(outcome: EditOutcome) -> AgentUsage | None:
    if not outcome.agent_session:
        return None
    return AgentUsage(
        sessionId=outcome.agent_session,
        costUsd=outcome.cost_usd,
        turns=outcome.turns,
        progress=list(outcome.progress),
    )


def _paused(
    command: Command, allowance: Allowance, outcome: EditOutcome, sha: str, files: list[str], clock: _Stopwatch
) -> CommandResult:
    """The result of a change the month's allowance stopped: what it did, and what CONTINUE would allow."""
    return CommandResult(
        kind="paused",
        commit=sha,
        branch=command.branch,
        filesChanged=files[:MAX_FILES_LISTED],
        previewUrl="",
        summary=bounded(outcome.summary, MAX_SUMMARY),
        timings=clock.timings(),
        agent=_usage(outcome),
        budget=BudgetPause(
            spentUsd=round(allowance.spent_usd + outcome.cost_usd, 6),
            allowanceUsd=allowance.budget_usd,
            continueUsd=allowance.continue_usd,
        ),
    )


def _publish_and_push(
    publisher: PreviewPublisher, workspace: Workspace, site: Path, project_id: str, command: Command, sha: str
) -> tuple[PublishedPreview, bool]:
    """The preview's upload and the branch's push at once: neither needs the other, and each waits on its own
    remote. The push always finishes before this returns or raises (nothing runs git in the checkout after
    it), and a failed upload still leaves the change pushed. (preview, whether the push merged the remote's
    newer commits).

    A push that has to merge the remote's newer commits changes the checkout while the upload may be reading
    it (a site without a build is its checkout): that preview may mix the two, and is never shown; the caller
    builds and publishes again from the merge, which is what the reply links to."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pushing = pool.submit(workspace.push, command.branch)
        try:
            published = publisher.publish(site, project_id, command.threadId, sha)
        finally:
            wait([pushing])
        return published, pushing.result()


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
    cancel: Cancellation | None = None,
    carried_over: str = "",
    fetch_attachment: Fetch | None = None,
    git_token: str = "",
    browser: str | None = None,
    agent: AgentConfig | None = None,
) -> CommandResult:
    """Run one command. ``cancel`` lets a newer message interrupt it: partial work is committed as a WIP
    commit on the thread's branch and pushed, then WorkerInterruptedError says where it is. ``carried_over``
    is the instruction of an interrupted command of the same thread, which this one continues."""
    _check_consistent(project, message, command)
    cancel = cancel or Cancellation()
    instruction = message.instruction
    if carried_over.strip():
        instruction = f"{instruction}\n\n{CARRIED_OVER_HEADER}\n{carried_over.strip()}"
    clock = _Stopwatch()
    # Configuration errors fail before any git work.
    editor = editor_for(project.editor, timeout=editor_timeout, agent=agent)
    check_output_dir(project.outputDir)
    # Only a build's output is disposable and off-limits to edits; without a build the output dir is the
    # site's own source and must stay editable. (A detected output is kept out by .git/info/exclude.)
    exclude = {project.outputDir} if project.buildCommand.strip() and project.outputDir.strip() else set()
    workspace = Workspace.for_command(workspace_root, project, command.userId, identity, git_token)
    usage: AgentUsage | None = None  # what a coding agent reported (none for a retry that found its commit)
    try:
        with clock.lap("prepare"):
            workspace.prepare(command.branch, exclude=exclude, message_id=command.messageId)
            if fetch_attachment is not None:
                # The mail's attachments go into an uploads folder the agent is told about (never committed).
                uploads = prepare_uploads(workspace.path, message, fetch_attachment)
                instruction, exclude = uploads.instruction_for(instruction), exclude | uploads.excluded
        cancel.check()
        # A retried command whose previous attempt got as far as its own commit (it failed at upload or push)
        # finds that commit on HEAD; editing again would fail ("nothing to change") or apply the edit twice.
        earlier = workspace.head_commit_for(command.messageId)
        if earlier is not None:
            sha, files = earlier
            summary = replies.ALREADY_SAVED
        elif agent is not None and agent.allowance is not None and agent.allowance.exhausted:
            # The month's allowance is used up: the agent does not start, the owner is asked for CONTINUE.
            return _paused(command, agent.allowance, EditOutcome(summary=""), "", [], clock)
        else:
            with clock.lap("edit"):
                outcome = editor.run(workspace.path, instruction, exclude, cancel=cancel)
            cancel.check()
            with clock.lap("commit"):
                try:
                    sha, files = workspace.commit(
                        commit_message(message.instruction, command.threadId, command.messageId), exclude
                    )
                except NothingToChangeError:
                    if not outcome.paused:
                        raise
                    sha, files = "", []
            if outcome.paused and agent is not None and agent.allowance is not None:
                # What the agent did before the allowance ran out is kept on the thread's branch, unbuilt:
                # CONTINUE carries on from it.
                if sha:
                    workspace.push(command.branch)
                return _paused(command, agent.allowance, outcome, sha, files, clock)
            summary = outcome.summary
            usage = _usage(outcome)
        plan = plan_build(workspace.path, project.buildCommand, project.outputDir)
        for _ in range(PUSH_ATTEMPTS):  # bounded: a remote that keeps moving gets the last merge's preview
            cancel.check()
            with clock.lap("build"):
                try:
                    built = run_build(workspace.path, plan, build_timeout, cancel, workspace_root / BUILD_CACHE)
                except BuildFailedError:
                    workspace.push(command.branch)  # the change is committed: a failed build must not strand it
                    raise
            cancel.check()
            with clock.lap("publish"):
                published, merged = _publish_and_push(publisher, workspace, built.path, project.projectId, command, sha)
            if not merged:
                break
            # The branch had moved on the remote: the preview must show what was pushed, merge and all.
            sha = workspace.head()
        with clock.lap("screenshot"):

            def before(pages: list[str]) -> dict[str, bytes]:
                return before_pictures(
                    workspace,
                    project,
                    pages,
                    browser,
                    cache_root=workspace_root / BUILD_CACHE,
                    build_timeout=build_timeout,
                    cancel=cancel,
                )

            shots, no_shots = take_screenshots(built.path, files, browser, publisher, project, sha, cancel, before)
    except CommandCancelledError as stopped:
        if stopped.interruption.abandon:
            raise WorkerAbandonedError(str(stopped)) from None
        raise save_partial_work(workspace, message, command, exclude, stopped.interruption) from None
    finally:
        workspace.close()
    return CommandResult(
        commit=sha,
        branch=command.branch,
        filesChanged=files[:MAX_FILES_LISTED],
        previewUrl=published.url,
        versionUrl=published.version_url,
        summary=bounded(summary, MAX_SUMMARY),
        timings=clock.timings(),
        keptAside=workspace.kept_aside,
        behindDefault=workspace.behind,
        screenshots=shots,
        screenshotNote=no_shots,
        agent=usage,
    )
