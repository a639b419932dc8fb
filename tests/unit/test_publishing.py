"""PUBLISH and UNDO decided on real git: fast-forward, merge, conflict, stale preview, retry, undo, rollback.

A bare ``origin`` whose ``main`` is the live site, the worker's checkout, and a colleague's clone that
changes the live site meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from container.worker.job import run_command
from container.worker.publishing import PUBLISHES_TRAILER, ROLLS_BACK_TRAILER, PublishOutcome, publish, undo
from container.worker.workspace import Workspace
from tests.gitrepos import FakePublisher, bare_git, git, isolate_git, message_and_command, seed_origin
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
def root(tmp_path: Path) -> Path:
    return tmp_path / "workspaces"


@pytest.fixture
def project(origin: Path) -> Project:
    return Project(projectId="acme", repoUrl=str(origin), editor="replace", buildCommand="")


def change(project: Project, root: Path, instruction: str, message_id: str) -> CommandResult:
    message, command = message_and_command(instruction, message_id, THREAD)
    return run_command(project, message, command, workspace_root=root, publisher=FakePublisher(), identity=IDENTITY)


@pytest.fixture
def workspace(root: Path, origin: Path) -> Iterator[Workspace]:
    ws = Workspace(root, "acme", "alice", str(origin), "", IDENTITY)
    yield ws
    ws.close()


def ready(ws: Workspace) -> Workspace:
    ws.prepare(BRANCH, take_default=False)
    return ws


def live(origin: Path, path: str = "index.html") -> str:
    return bare_git(origin, "show", f"main:{path}")


def colleague_commits(tmp_path: Path, origin: Path, path: str, text: str) -> str:
    clone = tmp_path / "colleague"
    if not clone.exists():
        git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "pull", "-q", "origin", "main")
    (clone / path).write_text(text)
    git(clone, "commit", "-qam", f"colleague edits {path}")
    git(clone, "push", "-q", "origin", "HEAD:main")
    return git(clone, "rev-parse", "HEAD")


# --- PUBLISH -------------------------------------------------------------------------------------------------


def test_publish_fast_forwards_the_live_site_to_exactly_what_the_owner_saw(
    project: Project, root: Path, origin: Path, workspace: Workspace
) -> None:
    before = bare_git(origin, "rev-parse", "main")
    seen = change(project, root, 'replace "Call us" with "Ring us"', "m-1").commit

    outcome = publish(ready(workspace), BRANCH, seen)

    assert outcome == PublishOutcome(kind="published", live=seen, previous=before)
    assert bare_git(origin, "rev-parse", "main") == seen  # a fast-forward: no commit of ours
    assert live(origin) == "<h1>Acme</h1>\n<p>Ring us on 555-0100</p>"


def test_publish_merges_when_the_live_site_moved_on_and_keeps_both(
    tmp_path: Path, project: Project, root: Path, origin: Path, workspace: Workspace
) -> None:
    seen = change(project, root, 'replace "Call us" with "Ring us"', "m-1").commit
    theirs = colleague_commits(tmp_path, origin, "about.html", "<p>Since 1998</p>\n")

    outcome = publish(ready(workspace), BRANCH, seen)

    assert outcome.kind == "published" and outcome.previous == theirs
    assert (
        live(origin) == "<h1>Acme</h1>\n<p>Ring us on 555-0100</p>"
        and live(origin, "about.html") == "<p>Since 1998</p>"
    )
    assert f"{PUBLISHES_TRAILER}: {seen}" in bare_git(origin, "log", "-1", "--format=%B", "main")


def test_a_conflict_with_the_live_site_changes_nothing(
    tmp_path: Path, project: Project, root: Path, origin: Path, workspace: Workspace
) -> None:
    seen = change(project, root, 'replace "Call us" with "Ring us"', "m-1").commit
    theirs = colleague_commits(tmp_path, origin, "index.html", "<h1>Acme</h1>\n<p>Write to us</p>\n")

    outcome = publish(ready(workspace), BRANCH, seen)

    assert outcome.kind == "conflict" and outcome.conflicts == ["index.html"]
    assert bare_git(origin, "rev-parse", "main") == theirs
    assert not (workspace.path / ".git" / "MERGE_HEAD").exists()
    assert git(workspace.path, "status", "--porcelain") == ""


def test_a_thread_that_moved_on_since_the_owner_looked_is_not_published(
    project: Project, root: Path, origin: Path, workspace: Workspace
) -> None:
    before = bare_git(origin, "rev-parse", "main")
    seen = change(project, root, 'replace "Call us" with "Ring us"', "m-1").commit
    newer = change(project, root, 'replace "555-0100" with "555-0199"', "m-2").commit

    outcome = publish(ready(workspace), BRANCH, seen)

    assert outcome == PublishOutcome(kind="stale", newer=newer)
    assert bare_git(origin, "rev-parse", "main") == before


def test_a_retried_publish_finds_it_live_and_does_nothing_twice(
    project: Project, root: Path, origin: Path, workspace: Workspace
) -> None:
    seen = change(project, root, 'replace "Call us" with "Ring us"', "m-1").commit
    first = publish(ready(workspace), BRANCH, seen)
    again = publish(ready(workspace), BRANCH, seen)
    assert again == PublishOutcome(kind="already-live", live=first.live)
    assert bare_git(origin, "rev-list", "--count", "main") == "2"


def test_a_thread_with_no_change_has_nothing_to_publish(workspace: Workspace) -> None:
    assert publish(ready(workspace), BRANCH, "").kind == "nothing"


# --- UNDO ----------------------------------------------------------------------------------------------------


def pushed(origin: Path) -> str:
    return bare_git(origin, "show", f"refs/heads/{BRANCH}:index.html")


def test_undo_takes_back_the_last_change_as_a_new_commit_then_the_one_before(
    project: Project, root: Path, origin: Path, workspace: Workspace
) -> None:
    first = change(project, root, 'replace "Call us" with "Ring us"', "m-1").commit
    second = change(project, root, 'replace "555-0100" with "555-0199"', "m-2").commit

    once = undo(ready(workspace), BRANCH, "m-3", THREAD)
    assert once.kind == "undone" and once.undid == second and once.undid_files == ["index.html"]
    assert pushed(origin) == "<h1>Acme</h1>\n<p>Ring us on 555-0100</p>"
    assert bare_git(origin, "merge-base", "--is-ancestor", second, once.commit) == ""  # history kept

    twice = undo(ready(workspace), BRANCH, "m-4", THREAD)
    assert twice.undid == first and pushed(origin) == SITE["index.html"].rstrip("\n")
    assert undo(ready(workspace), BRANCH, "m-5", THREAD).kind == "nothing"


def test_a_retried_undo_does_not_take_back_a_second_change(
    project: Project, root: Path, origin: Path, workspace: Workspace
) -> None:
    change(project, root, 'replace "Call us" with "Ring us"', "m-1")
    second = change(project, root, 'replace "555-0100" with "555-0199"', "m-2").commit
    first_try = undo(ready(workspace), BRANCH, "m-3", THREAD)
    retry = undo(ready(workspace), BRANCH, "m-3", THREAD)  # the worker died after pushing, before answering
    assert retry.commit == first_try.commit and retry.undid == second
    assert pushed(origin) == "<h1>Acme</h1>\n<p>Ring us on 555-0100</p>"


def test_undo_right_after_a_publish_rolls_the_live_site_back(
    tmp_path: Path, project: Project, root: Path, origin: Path, workspace: Workspace
) -> None:
    colleague_commits(tmp_path, origin, "about.html", "<p>Since 1998</p>\n")
    seen = change(project, root, 'replace "Call us" with "Ring us"', "m-1").commit
    published = publish(ready(workspace), BRANCH, seen)
    assert live(origin) == "<h1>Acme</h1>\n<p>Ring us on 555-0100</p>"

    outcome = undo(ready(workspace), BRANCH, "m-3", THREAD, published)

    assert outcome.kind == "undone" and outcome.live
    assert live(origin) == SITE["index.html"].rstrip("\n") and live(origin, "about.html") == "<p>Since 1998</p>"
    assert bare_git(origin, "rev-parse", "main^") == published.live  # a new commit on top, nothing rewritten
    assert f"{ROLLS_BACK_TRAILER}: {published.live}" in bare_git(origin, "log", "-1", "--format=%B", "main")
    assert pushed(origin) == SITE["index.html"].rstrip("\n")
    # A retry finds both done.
    again = undo(ready(workspace), BRANCH, "m-3", THREAD, published)
    assert again.live == outcome.live and again.commit == outcome.commit


def test_undo_after_a_publish_changes_nothing_when_something_newer_went_live(
    tmp_path: Path, project: Project, root: Path, origin: Path, workspace: Workspace
) -> None:
    seen = change(project, root, 'replace "Call us" with "Ring us"', "m-1").commit
    published = publish(ready(workspace), BRANCH, seen)
    newer = colleague_commits(tmp_path, origin, "about.html", "<p>Since 1998</p>\n")

    outcome = undo(ready(workspace), BRANCH, "m-3", THREAD, published)

    assert outcome.kind == "live-moved" and outcome.live == newer
    assert bare_git(origin, "rev-parse", "main") == newer
    assert bare_git(origin, "rev-parse", f"refs/heads/{BRANCH}") == seen
