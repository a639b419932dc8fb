"""A thread's branch and a real remote that moves: the live site's newer commits, and pushes that are rejected.

Before each command the branch takes the default branch's new commits when they merge cleanly; when they do
not, nothing is resolved by picking a side (the command runs on the branch as it was and the result says it is
behind, and where). A push the remote rejects because the branch moved there fetches, merges and retries; it
never forces. Real git throughout: a bare ``origin``, someone else's clone of it, and the worker's checkout.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from container.worker.job import run_command
from container.worker.workspace import BRINGS_IN_TRAILER
from tests.gitrepos import FakePublisher, bare_git, git, isolate_git, message_and_command, seed_origin
from workflows import replies
from workflows.errors import PushFailedError
from workflows.models import CommandResult, Project
from workflows.threads import branch_for

THREAD = "ab3k9x2m"
BRANCH = branch_for(THREAD)
IDENTITY = ("WebOrdinary", "bot@webordinary.test")
SITE = {"index.html": "<h1>Acme</h1>\n<p>Call us on 555-0100</p>\n", "about.html": "<p>Since 1999</p>\n"}

isolated_git = pytest.fixture(autouse=True)(isolate_git)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    return seed_origin(tmp_path / "remote" / "site.git", SITE)


@pytest.fixture
def colleague(tmp_path: Path, origin: Path) -> Path:
    """Someone else's clone: they change the live site (main) or the thread's branch directly."""
    clone = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    return clone


def project_for(origin: Path, editor: str = "replace") -> Project:
    return Project(projectId="acme", repoUrl=str(origin), editor=editor, buildCommand="")


def run(project: Project, root: Path, instruction: str, message_id: str, publisher: FakePublisher) -> CommandResult:
    message, command = message_and_command(instruction, message_id, THREAD)
    return run_command(project, message, command, workspace_root=root, publisher=publisher, identity=IDENTITY)


def commit_on(clone: Path, branch: str, path: str, text: str) -> str:
    git(clone, "fetch", "-q", "origin")
    git(clone, "checkout", "-q", "-B", branch, f"origin/{branch}")
    (clone / path).write_text(text)
    git(clone, "commit", "-qam", f"colleague edits {path}")
    git(clone, "push", "-q", "origin", branch)
    return git(clone, "rev-parse", "HEAD")


def pushed(origin: Path, path: str) -> str:
    return bare_git(origin, "show", f"refs/heads/{BRANCH}:{path}")


def test_the_branch_takes_the_live_sites_new_commits_when_they_merge_cleanly(
    tmp_path: Path, origin: Path, colleague: Path
) -> None:
    root, publisher = tmp_path / "workspaces", FakePublisher()
    project = project_for(origin)
    run(project, root, 'replace "Call us" with "Ring us"', "m-1", publisher)
    live = commit_on(colleague, "main", "about.html", "<p>Since 1998</p>\n")

    result = run(project, root, 'replace "555-0100" with "555-0199"', "m-2", publisher)

    assert result.behindDefault is None
    assert pushed(origin, "index.html") == "<h1>Acme</h1>\n<p>Ring us on 555-0199</p>"
    assert pushed(origin, "about.html") == "<p>Since 1998</p>"  # the live site's change is in the preview too
    assert publisher.sites[THREAD]["about.html"] == b"<p>Since 1998</p>\n"
    bare_git(origin, "merge-base", "--is-ancestor", live, result.commit)
    merge = bare_git(origin, "log", "-1", "--format=%B", f"{result.commit}^")
    assert f"{BRINGS_IN_TRAILER}: origin/main" in merge  # our merge, marked as ours
    assert result.filesChanged == ["index.html"]


def test_a_conflicting_live_change_is_not_resolved_by_picking_a_side(
    tmp_path: Path, origin: Path, colleague: Path
) -> None:
    root, publisher = tmp_path / "workspaces", FakePublisher()
    project = project_for(origin)
    run(project, root, 'replace "Call us" with "Ring us"', "m-1", publisher)
    commit_on(colleague, "main", "index.html", "<h1>Acme</h1>\n<p>Write to us</p>\n")

    result = run(project, root, 'replace "Acme" with "Acme Ltd"', "m-2", publisher)

    assert result.behindDefault is not None
    assert result.behindDefault.commits == 1 and result.behindDefault.conflicts == ["index.html"]
    # The command ran on the branch as it was; neither side's text was picked for the other.
    assert pushed(origin, "index.html") == "<h1>Acme Ltd</h1>\n<p>Ring us on 555-0100</p>"
    assert bare_git(origin, "show", "main:index.html") == "<h1>Acme</h1>\n<p>Write to us</p>"
    checkout = root / "acme" / "alice" / "checkout"
    assert not (checkout / ".git" / "MERGE_HEAD").exists()
    # The owner is told in plain words.
    text = replies.render(
        replies.ReplyFacts(outcome="done", threadId=THREAD, result=replies.ResultFacts(**result.model_dump()))
    ).text
    assert "index.html" in text and "live website" in text
    assert not replies.leaks(text)


def test_a_retried_finished_command_publishes_its_own_commit_without_the_live_sites_news(
    tmp_path: Path, origin: Path, colleague: Path
) -> None:
    root, publisher = tmp_path / "workspaces", FakePublisher()
    project = project_for(origin)
    first = run(project, root, 'replace "Call us" with "Ring us"', "m-1", publisher)
    commit_on(colleague, "main", "about.html", "<p>Since 1998</p>\n")

    # The worker died after pushing, before answering: the retry finds its commit and publishes exactly that.
    retried = run(project, root, 'replace "Call us" with "Ring us"', "m-1", publisher)

    assert retried.commit == first.commit
    assert retried.summary == replies.ALREADY_SAVED


def test_after_a_failed_push_the_next_command_builds_on_the_merge_instead_of_keeping_it_aside(
    tmp_path: Path, origin: Path, colleague: Path
) -> None:
    root, publisher = tmp_path / "workspaces", FakePublisher()
    project = project_for(origin)
    run(project, root, 'replace "Call us" with "Ring us"', "m-1", publisher)
    commit_on(colleague, "main", "about.html", "<p>Since 1998</p>\n")
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are closed today' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(PushFailedError, match="pushes are closed today"):  # declined, not moved: no retry
        run(project, root, 'replace "555-0100" with "555-0199"', "m-2", publisher)
    hook.unlink()

    result = run(project, root, 'replace "Acme" with "Acme Ltd"', "m-3", publisher)

    # m-2's commit is not this command's: it is kept aside as before; our merge under it is not a leftover.
    assert [kept.kind for kept in result.keptAside] == ["unpushed"]
    assert pushed(origin, "about.html") == "<p>Since 1998</p>"
    assert pushed(origin, "index.html") == "<h1>Acme Ltd</h1>\n<p>Ring us on 555-0100</p>"


def pushing_agent(colleague: Path, path: str, text: str) -> str:
    """An agent that edits index.html while, meanwhile, a colleague pushes ``path`` to the thread's branch."""
    script = (
        "import pathlib, subprocess, sys\n"
        "who = ['-c', 'user.name=Col', '-c', 'user.email=col@example.com']\n"
        "def git(*a): subprocess.run(['git', *who, *a], cwd=sys.argv[1], check=True, capture_output=True)\n"
        "git('fetch', '-q', 'origin')\n"
        f"git('checkout', '-q', '-B', '{BRANCH}', 'origin/{BRANCH}')\n"
        f"pathlib.Path(sys.argv[1], '{path}').write_text({text!r})\n"
        "git('commit', '-qam', 'colleague edits meanwhile')\n"
        f"git('push', '-q', 'origin', '{BRANCH}')\n"
        "page = pathlib.Path('index.html')\n"
        "page.write_text(page.read_text().replace('Acme', 'Acme Ltd'))\n"
    )
    agent = Path(colleague.parent / "agent.py")
    agent.write_text(script)
    return f"command:{shlex.quote(sys.executable)} {shlex.quote(str(agent))} {shlex.quote(str(colleague))}"


def test_a_rejected_push_fetches_merges_and_retries_and_the_preview_shows_the_merge(
    tmp_path: Path, origin: Path, colleague: Path
) -> None:
    root, publisher = tmp_path / "workspaces", FakePublisher()
    run(project_for(origin), root, 'replace "Call us" with "Ring us"', "m-1", publisher)
    project = project_for(origin, pushing_agent(colleague, "about.html", "<p>Since 1998</p>\n"))

    result = run(project, root, "make it Acme Ltd", "m-2", publisher)

    assert bare_git(origin, "rev-parse", f"refs/heads/{BRANCH}") == result.commit
    assert pushed(origin, "index.html") == "<h1>Acme Ltd</h1>\n<p>Ring us on 555-0100</p>"
    assert pushed(origin, "about.html") == "<p>Since 1998</p>"
    assert publisher.sites[THREAD]["about.html"] == b"<p>Since 1998</p>\n"  # republished after the merge
    assert result.filesChanged == ["index.html"]
    # A retry of the same command still recognises its own work under the merge.
    again = run(project_for(origin), root, "make it Acme Ltd", "m-2", publisher)
    assert again.commit == result.commit and again.summary == replies.ALREADY_SAVED


def test_a_rejected_push_that_conflicts_fails_and_never_forces(tmp_path: Path, origin: Path, colleague: Path) -> None:
    root, publisher = tmp_path / "workspaces", FakePublisher()
    run(project_for(origin), root, 'replace "Call us" with "Ring us"', "m-1", publisher)
    project = project_for(origin, pushing_agent(colleague, "index.html", "<h1>Theirs</h1>\n"))

    with pytest.raises(PushFailedError, match="does not merge cleanly"):
        run(project, root, "make it Acme Ltd", "m-2", publisher)

    assert pushed(origin, "index.html") == "<h1>Theirs</h1>"  # the colleague's push stands
