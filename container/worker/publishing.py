"""PUBLISH and UNDO in git: what goes live, and how a change is taken back, decided on the real repository.

PUBLISH puts the thread's branch on the default branch: a fast-forward when the default branch has nothing
new, else a merge commit; a conflict changes nothing. It publishes exactly the commit the owner last saw in a
preview; if the thread moved on since, nothing is published and the newer commit is named so the reply can
show it and ask again.

UNDO reverts the thread's last change as a new commit (history is never rewritten). Right after a publish it
also rolls the live site back to what was live before, as a new commit on the default branch whose files are
that earlier version's, unless something newer was published since: then it changes nothing at all.

Every operation starts from the remote's state (``Workspace.prepare`` with ``take_default=False``) and pushes
without forcing; a retry after a push that landed finds the work done (``already-live``) instead of doing it
twice. The caller builds and deploys what these return.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import git

from container.worker.workspace import (
    NETWORK_TIMEOUT_S,
    Workspace,
    git_error,
    is_ancestor,
    made_for,
    resolve,
    trailers_of,
)
from workflows.errors import PushFailedError

UNDOES_TRAILER = "Undoes"
ROLLS_BACK_TRAILER = "Rolls-Back"
PUBLISHES_TRAILER = "Publishes"
UNDO_HORIZON = 1000  # commits looked through for the thread's last change

PublishKind = Literal["published", "already-live", "stale", "conflict", "nothing"]
UndoKind = Literal["undone", "nothing", "conflict", "live-moved"]


@dataclass(frozen=True)
class PublishOutcome:
    kind: PublishKind
    live: str = ""  # the default branch's commit that is live now (published, already-live)
    previous: str = ""  # what was live before (published): UNDO rolls back to it
    newer: str = ""  # stale: the thread's commit the owner has not seen yet
    conflicts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UndoOutcome:
    kind: UndoKind
    commit: str = ""  # the thread's new head (undone)
    undid: str = ""  # the commit taken back
    undid_files: list[str] = field(default_factory=list)
    live: str = ""  # the default branch's new commit when the live site was rolled back too
    conflicts: list[str] = field(default_factory=list)


def _conflicted(repo: git.Repo) -> list[str]:
    return sorted(p for p in repo.git.diff("--name-only", "--diff-filter=U", "-z").split("\0") if p)


def _push(workspace: Workspace, target: str) -> None:
    try:
        workspace.repo.git.push("origin", f"HEAD:refs/heads/{target}", kill_after_timeout=NETWORK_TIMEOUT_S)
    except git.GitCommandError as exc:
        # Never forced: a default branch that moved meanwhile fails this attempt, and the retry starts over
        # from the remote's new state.
        raise PushFailedError(f"Could not push {target}: {git_error(exc)}") from exc


def default_branch_name(workspace: Workspace) -> str:
    if workspace.default_branch:
        return workspace.default_branch
    name = workspace.repo.git.rev_parse("--abbrev-ref", "refs/remotes/origin/HEAD")
    return str(name).split("/", 1)[-1]


def publish(workspace: Workspace, branch: str, seen: str) -> PublishOutcome:
    """Put ``branch`` (as pushed, which must be ``seen``) live on the default branch."""
    repo = workspace.repo
    thread = resolve(repo, f"refs/remotes/origin/{branch}")
    if thread is None:
        return PublishOutcome(kind="nothing")
    if not seen or resolve(repo, seen) != thread:
        return PublishOutcome(kind="stale", newer=thread)
    target = default_branch_name(workspace)
    live = resolve(repo, f"refs/remotes/origin/{target}")
    if live is None:
        return PublishOutcome(kind="nothing")
    if is_ancestor(repo, thread, live):
        return PublishOutcome(kind="already-live", live=live)
    repo.git.checkout("-q", "--detach", live)
    try:
        if is_ancestor(repo, live, thread):
            repo.git.merge("--ff-only", thread)
        else:
            repo.git.merge(
                "--no-ff",
                "--no-edit",
                "--no-verify",
                "-m",
                f"Publish the changes of {branch}\n\n{PUBLISHES_TRAILER}: {thread}",
                thread,
            )
    except git.GitCommandError:
        conflicts = _conflicted(repo)
        if (Path(repo.git_dir) / "MERGE_HEAD").exists():
            repo.git.merge("--abort")
        return PublishOutcome(kind="conflict", conflicts=conflicts)
    _push(workspace, target)
    return PublishOutcome(kind="published", live=repo.head.commit.hexsha, previous=live)


def last_change(workspace: Workspace, thread_id: str) -> str | None:
    """The thread's latest change not yet undone: the newest commit on the branch's first-parent line that one
    of this thread's commands made (``Message:``) or saved when interrupted (``WIP-For:``), skipping our merges
    and undos. Commits of the live site or of other threads (published before this thread began) are never
    this thread's to undo."""
    repo = workspace.repo
    undone: set[str] = set()
    for commit in repo.iter_commits("HEAD", first_parent=True, max_count=UNDO_HORIZON):
        if (undid := _undone_by(commit)) is not None:
            undone.add(undid)
            continue
        trailers = trailers_of(commit)
        if commit.hexsha in undone or not re.search(rf"^Thread: {re.escape(thread_id)}$", trailers, re.MULTILINE):
            continue
        if re.search(r"^(Message|WIP-For): \S", trailers, re.MULTILINE):
            return commit.hexsha
    return None


def _rolled_back(repo: git.Repo, live: str, published: PublishOutcome) -> bool:
    """Whether ``live`` is our rollback of ``published`` (an earlier try of this UNDO got that far)."""
    return bool(live) and bool(
        re.search(rf"^{ROLLS_BACK_TRAILER}: {published.live}$", trailers_of(repo.commit(live)), re.MULTILINE)
    )


def _undone_by(commit: git.Commit) -> str | None:
    match = re.search(rf"^{UNDOES_TRAILER}: ([0-9a-f]{{40}})$", trailers_of(commit), re.MULTILINE)
    return match.group(1) if match else None


def _files(repo: git.Repo, commit: str) -> list[str]:
    listed = repo.git.diff_tree("--no-commit-id", "--name-only", "-r", "-z", "--root", commit)
    return [path for path in listed.split("\0") if path]


def undo(
    workspace: Workspace, branch: str, message_id: str, thread_id: str, published: PublishOutcome | None = None
) -> UndoOutcome:
    """Revert the thread's last change on ``branch``; with ``published`` (the thread's publish was its last
    step), roll the live site back to ``published.previous`` too, or change nothing if it moved on since.

    The undo commit carries the command's ``Message:`` trailer, so a retry finds it done (pushed or not) and
    only finishes what is left, never undoing a second change."""
    repo = workspace.repo
    target = default_branch_name(workspace)
    live = resolve(repo, f"refs/remotes/origin/{target}") or ""
    rollback = published is not None and bool(published.live and published.previous)
    already_rolled = rollback and published is not None and _rolled_back(repo, live, published)
    head = repo.head.commit
    earlier = _undone_by(head) if made_for(head, message_id) else None
    if rollback and published is not None and live != published.live and not already_rolled:
        return UndoOutcome(kind="live-moved", live=live)
    if earlier is not None:
        change = earlier
    else:
        found = last_change(workspace, thread_id)
        if found is None:
            return UndoOutcome(kind="nothing")
        change = found
        try:
            repo.git.revert("--no-edit", "--no-commit", change)
        except git.GitCommandError:
            conflicts = _conflicted(repo)
            repo.git.revert("--abort")
            return UndoOutcome(kind="conflict", undid=change, conflicts=conflicts)
        summary = repo.commit(change).summary
        subject = summary if isinstance(summary, str) else summary.decode("utf-8", "replace")
        message_file = Path(repo.git_dir) / "WEBORDINARY_UNDO_MSG"
        message_file.write_text(
            f"Undo: {subject}\n\n{UNDOES_TRAILER}: {change}\nThread: {thread_id}\nMessage: {message_id}\n",
            encoding="utf-8",
        )
        try:
            repo.git.commit("--no-verify", "--allow-empty", "--cleanup=whitespace", "-F", str(message_file))
        finally:
            message_file.unlink(missing_ok=True)
    rolled = live if already_rolled else ""
    if rollback and published is not None and not already_rolled:
        # The live site's files as they were before the publish, as a new commit on top of what is live.
        tree = repo.git.rev_parse(f"{published.previous}^{{tree}}")
        message = f"Take back the publish of {branch}\n\n{ROLLS_BACK_TRAILER}: {published.live}"
        rolled = str(repo.git.commit_tree(tree, "-p", published.live, "-m", message))
        try:
            repo.git.push("origin", f"{rolled}:refs/heads/{target}", kill_after_timeout=NETWORK_TIMEOUT_S)
        except git.GitCommandError as exc:
            raise PushFailedError(f"Could not push {target}: {git_error(exc)}") from exc
    workspace.push(branch)
    return UndoOutcome(
        kind="undone", commit=repo.head.commit.hexsha, undid=change, undid_files=_files(repo, change), live=rolled
    )
