"""A retried command starts from its branch's last pushed state.

The editor here is ``workflows/local/agents/append_line.py``: not idempotent, as no real agent is (every run
appends its line again). A worker "dies" after the editor has written and before the job's commit (or at the
other points named in each test); the retry is the real :func:`run_command` on the same workspace, as the next
worker of the pair would run it. It must do the whole instruction again from the pushed state, so the pushed
branch holds the line exactly once, while the dead run's leftovers are kept aside on a WIP ref, in the
workspace and on the remote, never mixed into the branch.

Real git throughout: a bare ``origin`` and the worker's checkout in ``tmp_path``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from container.worker.cancel import Interruption
from container.worker.editors import editor_for
from container.worker.job import commit_message, run_command, wip_message
from container.worker.workspace import WIP_MESSAGE, WIP_REF_PREFIX, Workspace
from tests.gitrepos import (
    FakePublisher,
    bare_git,
    checkout_of,
    git,
    isolate_git,
    message_and_command,
    seed_origin,
    wip_refs,
)
from workflows import replies
from workflows.errors import PushFailedError, RepositoryError
from workflows.local.agents import APPEND_LINE
from workflows.models import Command, CommandResult, NormalisedMessage, Project
from workflows.threads import branch_for

THREAD = "ab3k9x2m"
BRANCH = branch_for(THREAD)
LINE = "<p>Open on Sundays</p>"
SITE = "<h1>Acme</h1>\n<p>Call us on 555-0100</p>\n"
IDENTITY = ("WebOrdinary", "bot@webordinary.test")
INSTRUCTION = "Please say we are open on Sundays"


isolated_git = pytest.fixture(autouse=True)(isolate_git)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    return seed_origin(tmp_path / "remote" / "site.git", {"index.html": SITE})


@pytest.fixture
def project(origin: Path) -> Project:
    # No build: the checkout itself is the site, so everything the agent leaves is a candidate for a commit.
    agent = f"{shlex.quote(sys.executable)} {shlex.quote(str(APPEND_LINE))} --file index.html"
    return Project(projectId="acme", repoUrl=str(origin), editor=f"command:{agent}", buildCommand="")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    # The pair's workspaces, on storage its successive workers share.
    return tmp_path / "workspaces"


def command_for(message_id: str) -> tuple[NormalisedMessage, Command]:
    return message_and_command(INSTRUCTION, message_id, THREAD)


def run(project: Project, root: Path, message_id: str, publisher: FakePublisher | None = None) -> CommandResult:
    message, command = command_for(message_id)
    return run_command(
        project, message, command, workspace_root=root, publisher=publisher or FakePublisher(), identity=IDENTITY
    )


def workspace(project: Project, root: Path) -> Workspace:
    return Workspace(root, "acme", "alice", project.repoUrl, project.defaultBranch, IDENTITY)


def die_after_edit(project: Project, root: Path, message_id: str, *, agent_commits: bool = False) -> str:
    """What a run killed between the editor's write and the job's commit leaves: the job's own first steps
    (prepare, edit), then nothing. ``agent_commits``: the agent committed its half-done work itself, as coding
    agents may. Returns the checkout's HEAD as the dead run left it."""
    message, command = command_for(message_id)
    dead = workspace(project, root)
    try:
        dead.prepare(command.branch, message_id=command.messageId)
        editor_for(project.editor).run(dead.path, message.instruction, set())
        if agent_commits:
            git(dead.path, "commit", "-qam", "agent: checkpoint")
        return dead.head()
    finally:
        dead.close()


def die_after_commit(project: Project, root: Path, message_id: str) -> str:
    """A run killed after its commit and before its push: the job's commit, finished, and nothing more."""
    message, command = command_for(message_id)
    dead = workspace(project, root)
    try:
        dead.prepare(command.branch, message_id=command.messageId)
        editor_for(project.editor).run(dead.path, message.instruction, set())
        sha, _ = dead.commit(commit_message(message.instruction, THREAD, message_id), set())
        return sha
    finally:
        dead.close()


def pushed(origin: Path, path: str = "index.html", ref: str = f"refs/heads/{BRANCH}") -> str:
    return bare_git(origin, "show", f"{ref}:{path}")


def assert_done_once(outcome: CommandResult, origin: Path, base: str, message_id: str) -> None:
    """The retry edited again from the pushed state ``base``: one commit of its own on it, the line once."""
    assert outcome.kind == "changed", outcome
    assert outcome.filesChanged == ["index.html"]
    assert outcome.summary == f"Added {LINE!r} to index.html."  # the agent ran, not "already saved"
    assert bare_git(origin, "rev-parse", f"refs/heads/{BRANCH}") == outcome.commit
    assert bare_git(origin, "rev-parse", f"{outcome.commit}^") == base
    assert pushed(origin).count(LINE) == 1
    if base == main(origin):
        assert pushed(origin) == SITE + LINE  # exactly the instruction, nothing else (output is stripped)
    assert bare_git(origin, "log", "-1", "--format=%B", outcome.commit).endswith(f"Message: {message_id}")


def assert_not_in_branch(origin: Path, kept: str) -> None:
    """Nothing of a kept-aside commit reached the branch: it is no ancestor of it."""
    merged = subprocess.run(
        ["git", f"--git-dir={origin}", "merge-base", "--is-ancestor", kept, f"refs/heads/{BRANCH}"],
        capture_output=True,
    )
    assert merged.returncode == 1, "a kept-aside commit leaked into the branch"


def main(origin: Path) -> str:
    return bare_git(origin, "rev-parse", "refs/heads/main")


# --- the dead run's edit was never committed -----------------------------------------------------------------


def test_a_retry_after_an_uncommitted_edit_does_the_instruction_again_from_the_pushed_state(
    project: Project, root: Path, origin: Path
) -> None:
    die_after_edit(project, root, "m-1")
    checkout = checkout_of(root)
    assert (checkout / "index.html").read_text().count(LINE) == 1  # the stranded, half-done edit

    publisher = FakePublisher()
    outcome = run(project, root, "m-1", publisher)

    # A new thread: its pushed state is the default branch.
    assert_done_once(outcome, origin, main(origin), "m-1")
    assert publisher.sites[THREAD]["index.html"].decode().count(LINE) == 1
    # The leftovers are kept aside, in the workspace and on the remote, and hold exactly what the dead run did.
    ((ref, kept),) = wip_refs(checkout).items()
    assert ref.startswith(f"{WIP_REF_PREFIX}/{BRANCH}/") and ref.endswith(kept[:12])
    assert wip_refs(origin, bare=True) == {ref: kept}
    assert bare_git(origin, "log", "-1", "--format=%s", kept) == WIP_MESSAGE
    assert bare_git(origin, "rev-parse", f"{kept}^") == main(origin)
    assert bare_git(origin, "show", f"{kept}:index.html").count(LINE) == 1
    assert_not_in_branch(origin, kept)
    assert git(checkout, "status", "--porcelain") == ""
    assert git(checkout, "stash", "list") == ""


def test_on_an_existing_thread_the_retry_starts_from_the_branch_as_pushed(
    project: Project, root: Path, origin: Path
) -> None:
    earlier = run(project, root, "m-0")  # the thread's first message, done and pushed
    assert pushed(origin).count(LINE) == 1
    die_after_edit(project, root, "m-1")

    outcome = run(project, root, "m-1")

    # The thread's second instruction, done once more on top of the first: two lines, one per message.
    assert outcome.kind == "changed"
    assert bare_git(origin, "rev-parse", f"{outcome.commit}^") == earlier.commit
    assert pushed(origin).count(LINE) == 2
    assert bare_git(origin, "rev-list", "--count", f"main..refs/heads/{BRANCH}") == "2"
    ((_, kept),) = wip_refs(origin, bare=True).items()
    assert bare_git(origin, "rev-parse", f"{kept}^") == earlier.commit
    assert bare_git(origin, "show", f"{kept}:index.html").count(LINE) == 2  # the first's, and the stranded one
    assert_not_in_branch(origin, kept)


def test_a_second_retry_also_starts_from_the_pushed_state(project: Project, root: Path, origin: Path) -> None:
    die_after_edit(project, root, "m-1")
    die_after_edit(project, root, "m-1")  # the first retry died the same way

    outcome = run(project, root, "m-1")

    assert_done_once(outcome, origin, main(origin), "m-1")
    kept = wip_refs(checkout_of(root))
    assert kept and wip_refs(origin, bare=True) == kept
    for sha in kept.values():
        # Each dead run started from the pushed state too: no leftover holds the line twice.
        assert bare_git(origin, "show", f"{sha}:index.html").count(LINE) == 1
        assert bare_git(origin, "rev-parse", f"{sha}^") == main(origin)
        assert_not_in_branch(origin, sha)


# --- the dead run's work was committed but never pushed ----------------------------------------------------


def test_a_half_done_edit_the_agent_committed_itself_is_kept_aside_too(
    project: Project, root: Path, origin: Path
) -> None:
    stranded = die_after_edit(project, root, "m-1", agent_commits=True)
    checkout = checkout_of(root)
    assert git(checkout, "status", "--porcelain") == ""  # nothing uncommitted: only an unpushed commit

    outcome = run(project, root, "m-1")

    assert_done_once(outcome, origin, main(origin), "m-1")
    assert wip_refs(checkout) == wip_refs(origin, bare=True)
    ((ref, kept),) = wip_refs(origin, bare=True).items()
    assert ref.startswith(f"{WIP_REF_PREFIX}/{BRANCH}/")
    assert kept == stranded  # the agent's own commit, as it made it
    assert_not_in_branch(origin, kept)


def test_the_commands_own_commit_on_top_of_unpushed_leftovers_is_not_published(
    project: Project, root: Path, origin: Path, tmp_path: Path
) -> None:
    # The exception (publish its own finished commit) holds only when that commit sits directly on the pushed
    # state: here it is on top of the agent's unpushed checkpoint, so both are kept aside and the instruction
    # is done again.
    die_after_edit(project, root, "m-1", agent_commits=True)
    checkout = checkout_of(root)
    (checkout / "index.html").write_text((checkout / "index.html").read_text() + "<p>more</p>\n")
    finished = tmp_path / "message.txt"
    finished.write_text(commit_message(INSTRUCTION, THREAD, "m-1"))
    git(checkout, "commit", "-qa", "--cleanup=whitespace", "-F", str(finished))
    own = git(checkout, "rev-parse", "HEAD")

    outcome = run(project, root, "m-1")

    assert_done_once(outcome, origin, main(origin), "m-1")
    assert outcome.commit != own
    assert "<p>more</p>" not in pushed(origin)
    assert list(wip_refs(origin, bare=True).values()) == [own]  # the whole unpushed stack, kept by its tip
    assert_not_in_branch(origin, own)


def test_another_commands_unpushed_commit_is_not_the_exception(project: Project, root: Path, origin: Path) -> None:
    # m-0 committed and its push failed; its execution gave up. m-1 must not build on (and so publish) it.
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(PushFailedError):
        run(project, root, "m-0")
    other = git(checkout_of(root), "rev-parse", "HEAD")
    hook.unlink()

    outcome = run(project, root, "m-1")

    assert_done_once(outcome, origin, main(origin), "m-1")
    assert list(wip_refs(origin, bare=True).values()) == [other]
    assert_not_in_branch(origin, other)


# --- the one exception: the command's own finished commit, directly on the pushed state --------------------


def test_a_retry_after_the_commit_publishes_that_commit_without_editing_again(
    project: Project, root: Path, origin: Path
) -> None:
    own = die_after_commit(project, root, "m-1")

    outcome = run(project, root, "m-1")

    assert outcome.kind == "changed" and outcome.commit == own
    assert outcome.summary == replies.ALREADY_SAVED
    assert outcome.filesChanged == ["index.html"]
    assert bare_git(origin, "rev-parse", f"refs/heads/{BRANCH}") == own
    assert pushed(origin).count(LINE) == 1
    assert wip_refs(checkout_of(root)) == {} and wip_refs(origin, bare=True) == {}


def test_the_exception_still_keeps_aside_what_was_left_uncommitted_on_top(
    project: Project, root: Path, origin: Path
) -> None:
    own = die_after_commit(project, root, "m-1")
    (checkout_of(root) / "scratch.html").write_text("<p>stray</p>\n")  # a later step's debris

    outcome = run(project, root, "m-1")

    assert outcome.kind == "changed" and outcome.commit == own
    assert pushed(origin).count(LINE) == 1
    assert "scratch.html" not in bare_git(origin, "ls-tree", "--name-only", own).splitlines()
    ((_, kept),) = wip_refs(origin, bare=True).items()
    assert bare_git(origin, "rev-parse", f"{kept}^") == own
    assert bare_git(origin, "show", f"{kept}:scratch.html") == "<p>stray</p>"
    assert not (checkout_of(root) / "scratch.html").exists()


def test_a_finished_commit_for_another_message_is_not_the_exception(project: Project, root: Path, origin: Path) -> None:
    own = die_after_commit(project, root, "m-0")

    outcome = run(project, root, "m-1")

    assert_done_once(outcome, origin, main(origin), "m-1")
    assert list(wip_refs(origin, bare=True).values()) == [own]
    assert_not_in_branch(origin, own)


# --- what is listed, and the graceful path that keeps today's behaviour -----------------------------------


def test_the_result_lists_what_was_kept_aside(project: Project, root: Path, origin: Path) -> None:
    die_after_edit(project, root, "m-1")

    outcome = run(project, root, "m-1")

    (kept,) = outcome.keptAside
    assert kept.kind == "uncommitted" and kept.pushed
    assert wip_refs(origin, bare=True) == {kept.ref: kept.commit}
    # Listed in the CommandSucceeded event: the workflow records the result as the worker sends it.
    assert CommandResult.model_validate_json(outcome.model_dump_json()).keptAside == [kept]


def test_an_interrupted_commands_unpushed_wip_is_continued_not_kept_aside(
    project: Project, root: Path, origin: Path
) -> None:
    # The graceful path: an interrupted command committed its partial work as a WIP commit, but its push
    # failed. The newer command carries the instruction on and builds on that WIP, as it always has.
    message, command = command_for("m-0")
    interrupted = workspace(project, root)
    try:
        interrupted.prepare(command.branch, message_id=command.messageId)
        editor_for(project.editor).run(interrupted.path, message.instruction, set())
        by = Interruption(by_message="m-1", by_thread=THREAD)
        wip, _ = interrupted.commit(wip_message(message.instruction, command, by), set())
    finally:
        interrupted.close()

    outcome = run(project, root, "m-1")

    assert outcome.kind == "changed" and outcome.keptAside == []
    assert bare_git(origin, "rev-parse", f"{outcome.commit}^") == wip
    assert pushed(origin).count(LINE) == 2  # the interrupted one's line, and this one's
    assert wip_refs(origin, bare=True) == {}


# --- the default branch is the remote's own, unless configured -------------------------------------------------


def test_a_new_thread_starts_from_the_branch_the_remote_names_as_default(tmp_path: Path) -> None:
    bare = tmp_path / "site.git"
    bare.mkdir()
    git(bare, "init", "-q", "--bare", "-b", "trunk")
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    git(seed, "checkout", "-q", "-b", "trunk")
    (seed / "index.html").write_text("<p>trunk</p>")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "On trunk")
    git(seed, "push", "-q", "origin", "trunk")
    git(seed, "checkout", "-q", "-b", "release")
    (seed / "index.html").write_text("<p>release</p>")
    git(seed, "commit", "-q", "-am", "On release")
    git(seed, "push", "-q", "origin", "release")

    workspace = Workspace(tmp_path / "ws", "acme", "alice", str(bare), "", IDENTITY)
    workspace.prepare("thread-ab3k9x2m")
    assert (workspace.path / "index.html").read_text() == "<p>trunk</p>"
    workspace.close()

    # The repository's owner makes another branch the default: the next new thread starts there.
    git(bare, "--git-dir", str(bare), "symbolic-ref", "HEAD", "refs/heads/release")
    workspace.prepare("thread-cd5h7j8k")
    assert (workspace.path / "index.html").read_text() == "<p>release</p>"
    workspace.close()

    # A configured default branch that the repository lacks is an error in words, not a guess.
    configured = Workspace(tmp_path / "ws2", "acme", "alice", str(bare), "main", IDENTITY)
    with pytest.raises(RepositoryError, match='no "main" branch'):
        configured.prepare("thread-ab3k9x2m")


@pytest.mark.parametrize("leftover", ["staged", "untracked", "deleted"])
def test_every_kind_of_uncommitted_leftover_is_kept_aside(
    project: Project, root: Path, origin: Path, leftover: str
) -> None:
    # One `git status` decides whether anything was left; each kind it reports must count.
    earlier = run(project, root, "m-0")
    checkout = checkout_of(root)
    if leftover == "deleted":
        (checkout / "index.html").unlink()
    else:
        (checkout / "notes.txt").write_text("half-done\n")
        if leftover == "staged":
            git(checkout, "add", "notes.txt")

    outcome = run(project, root, "m-1")

    assert outcome.kind == "changed" and bare_git(origin, "rev-parse", f"{outcome.commit}^") == earlier.commit
    ((_, kept),) = wip_refs(checkout).items()
    assert bare_git(origin, "show", f"{kept}^{{tree}}") != bare_git(origin, "show", f"{earlier.commit}^{{tree}}")
    assert_not_in_branch(origin, kept)
    assert git(checkout, "status", "--porcelain") == ""


def test_a_branch_name_that_names_another_branch_is_refused(project: Project, root: Path) -> None:
    for name in ("@{-1}", "thread-@{-1}", "-x", "a..b", ""):
        with pytest.raises(RepositoryError):
            workspace(project, root).prepare(name)
