from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from container.worker.build import BuildPlan, run_build
from container.worker.job import commit_message, run_command
from container.worker.preview import PublishedPreview, content_type
from container.worker.workspace import WIP_MESSAGE, WIP_REF_PREFIX, Workspace
from tests.gitrepos import FakePublisher, bare_git, git, isolate_git, message_and_command
from workflows.errors import (
    BuildFailedError,
    NothingToChangeError,
    PreviewUploadError,
    ProjectConfigError,
    PushFailedError,
    RepositoryError,
)
from workflows.models import Command, NormalisedMessage, Project
from workflows.threads import THREAD_ID_RE

THREAD = "ab3k9x2m"
OTHER_THREAD = "cd5h7j8k"
IDENTITY = ("WebOrdinary", "bot@webordinary.test")
BUILD_PY = """\
import pathlib, shutil
out = pathlib.Path("dist")
out.mkdir(exist_ok=True)
for page in pathlib.Path(".").glob("*.html"):
    shutil.copy(page, out / page.name)
print("built", len(list(out.iterdir())), "pages")
"""


isolated_git = pytest.fixture(autouse=True)(isolate_git)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    bare = tmp_path / "remote" / "site.git"
    bare.mkdir(parents=True)
    git(bare, "init", "-q", "--bare", "-b", "main")
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    (seed / "index.html").write_text("<h1>Acme</h1>\n<p>Call us on 555-0100</p>\n")
    (seed / "build.py").write_text(BUILD_PY)
    (seed / ".gitignore").write_text("dist/\n")
    git(seed, "checkout", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "Initial site")
    git(seed, "push", "-q", "origin", "main")
    return bare


def make_project(origin: Path, **overrides: Any) -> Project:
    fields: dict[str, Any] = {
        "projectId": "acme",
        "repoUrl": str(origin),
        "buildCommand": f"{sys.executable} build.py",
        "outputDir": "dist",
    }
    fields.update(overrides)
    return Project(**fields)


def make_message(instruction: str, message_id: str = "m-1", thread: str = THREAD) -> tuple[NormalisedMessage, Command]:
    return message_and_command(instruction, message_id, thread)


def run(
    project: Project,
    root: Path,
    publisher: FakePublisher,
    instruction: str,
    message_id: str = "m-1",
    thread: str = THREAD,
) -> Any:
    message, command = make_message(instruction, message_id, thread)
    return run_command(project, message, command, workspace_root=root, publisher=publisher, identity=IDENTITY)


def checkout_of(root: Path) -> Path:
    return root / "acme" / "alice" / "checkout"


def test_thread_ids_used_here_are_valid() -> None:
    assert THREAD_ID_RE.fullmatch(THREAD)
    assert THREAD_ID_RE.fullmatch(OTHER_THREAD)


# --- end to end --------------------------------------------------------------------------------------------


def test_run_command_edits_commits_builds_publishes_and_pushes(
    tmp_path: Path, origin: Path, isolated_git: Path
) -> None:
    publisher = FakePublisher()
    root = tmp_path / "workspaces"
    instruction = 'Please replace "Call us" with "Ring us"\n\nThanks, Alice'
    main_before = bare_git(origin, "rev-parse", "refs/heads/main")

    result = run(make_project(origin), root, publisher, instruction)

    branch = f"thread-{THREAD}"
    assert result.branch == branch
    assert bare_git(origin, "rev-parse", f"refs/heads/{branch}") == result.commit
    assert bare_git(origin, "rev-parse", "refs/heads/main") == main_before
    assert result.filesChanged == ["index.html"]
    assert result.previewUrl == f"https://{THREAD}-acme.preview.test/"
    assert result.versionUrl == f"https://{result.commit[:7]}-acme.preview.test/"
    assert result.summary == 'Replaced "Call us" with "Ring us" (1 place in index.html).'
    assert result.timings.totalMs >= result.timings.buildMs

    body = bare_git(origin, "log", "-1", "--format=%B", result.commit)
    assert body == ('Please replace "Call us" with "Ring us"\n\n' + instruction + f"\n\nThread: {THREAD}\nMessage: m-1")
    assert bare_git(origin, "log", "-1", "--format=%an <%ae>|%cn <%ce>", result.commit) == (
        "WebOrdinary <bot@webordinary.test>|WebOrdinary <bot@webordinary.test>"
    )
    checkout = checkout_of(root)
    assert git(checkout, "config", "--local", "user.name") == "WebOrdinary"
    assert git(checkout, "config", "--local", "user.email") == "bot@webordinary.test"
    assert not (isolated_git / ".gitconfig").exists()
    assert not (isolated_git / ".config" / "git").exists()

    site = publisher.sites[THREAD]
    assert "Ring us" in site["index.html"].decode()
    assert set(site) == {"index.html"}  # dist/ only, nothing of the repository itself
    assert git(checkout, "status", "--porcelain") == ""  # dist/ is ignored, nothing left dirty


def test_second_command_builds_on_the_first(tmp_path: Path, origin: Path) -> None:
    publisher = FakePublisher()
    root = tmp_path / "workspaces"
    project = make_project(origin)
    first = run(project, root, publisher, 'replace "Call us" with "Ring us"', "m-1")
    second = run(project, root, publisher, 'change "Ring us" to "Phone us"', "m-2")

    branch = f"refs/heads/thread-{THREAD}"
    assert bare_git(origin, "rev-parse", branch) == second.commit
    assert bare_git(origin, "rev-parse", f"{second.commit}^") == first.commit
    assert bare_git(origin, "rev-list", "--count", f"main..{branch}") == "2"
    assert bare_git(origin, "rev-list", "--merges", "--count", branch) == "0"
    assert "Phone us on 555-0100" in publisher.sites[THREAD]["index.html"].decode()


def test_a_new_thread_starts_from_main_without_stale_output(tmp_path: Path, origin: Path) -> None:
    publisher = FakePublisher()
    root = tmp_path / "workspaces"
    adder = "printf '<p>Extra</p>\\n' > extra.html && echo 'Added extra.html'"
    first = run(make_project(origin, editor=f"command:{adder}"), root, publisher, "add a page", "m-1")
    assert first.summary == "Added extra.html"
    assert set(publisher.sites[THREAD]) == {"index.html", "extra.html"}

    second = run(make_project(origin), root, publisher, 'replace "Call us" with "Ring us"', "m-2", OTHER_THREAD)

    assert bare_git(origin, "rev-parse", f"{second.commit}^") == bare_git(origin, "rev-parse", "main")
    # The other thread's extra.html was in dist/ (ignored) on disk; it must not leak into this preview.
    assert set(publisher.sites[OTHER_THREAD]) == {"index.html"}


def test_local_branch_fast_forwards_to_commits_pushed_elsewhere(tmp_path: Path, origin: Path) -> None:
    publisher = FakePublisher()
    root = tmp_path / "workspaces"
    project = make_project(origin)
    run(project, root, publisher, 'replace "Call us" with "Ring us"', "m-1")
    elsewhere = tmp_path / "elsewhere"
    git(tmp_path, "clone", "-q", "-b", f"thread-{THREAD}", str(origin), str(elsewhere))
    (elsewhere / "about.html").write_text("<p>About</p>\n")
    git(elsewhere, "add", "about.html")
    git(elsewhere, "commit", "-q", "-m", "Added by hand")
    git(elsewhere, "push", "-q", "origin", f"thread-{THREAD}")
    by_hand = git(elsewhere, "rev-parse", "HEAD")

    result = run(project, root, publisher, 'replace "About" with "About us"', "m-2")

    assert bare_git(origin, "rev-parse", f"{result.commit}^") == by_hand
    assert result.filesChanged == ["about.html"]


def test_leftovers_of_a_crashed_run_are_kept_aside_not_lost_nor_mixed_in(tmp_path: Path, origin: Path) -> None:
    publisher = FakePublisher()
    root = tmp_path / "workspaces"
    project = make_project(origin)
    first = run(project, root, publisher, 'replace "Call us" with "Ring us"', "m-1")
    checkout = checkout_of(root)
    (checkout / "draft.html").write_text("half done\n")
    (checkout / ".git" / "index.lock").write_text("")  # a git process died mid-command

    result = run(project, root, publisher, 'replace "Ring us" with "Phone us"', "m-2")

    # The next command starts from the pushed branch: the stranded file is not part of it...
    subjects = bare_git(origin, "log", "--format=%s", f"thread-{THREAD}").splitlines()
    assert subjects[:2] == ['replace "Ring us" with "Phone us"', 'replace "Call us" with "Ring us"']
    assert "draft.html" not in bare_git(origin, "ls-tree", "--name-only", result.commit).splitlines()
    # ...and it is not lost either: kept on a WIP ref of its own, here and on the remote, listed in the result.
    (kept,) = result.keptAside
    assert kept.kind == "uncommitted" and kept.pushed
    assert kept.ref.startswith(f"{WIP_REF_PREFIX}/thread-{THREAD}/")
    assert bare_git(origin, "rev-parse", kept.ref) == kept.commit
    assert bare_git(origin, "show", f"{kept.commit}:draft.html") == "half done"
    assert bare_git(origin, "rev-parse", f"{kept.commit}^") == first.commit
    assert bare_git(origin, "log", "-1", "--format=%s", kept.commit) == WIP_MESSAGE
    assert git(checkout, "stash", "list") == ""
    assert git(checkout, "status", "--porcelain") == ""


def test_retry_after_a_failed_push_reuses_the_commit(tmp_path: Path, origin: Path) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are closed today' >&2\nexit 1\n")
    hook.chmod(0o755)
    publisher = FakePublisher()
    root = tmp_path / "workspaces"
    project = make_project(origin)

    with pytest.raises(PushFailedError, match="pushes are closed today"):
        run(project, root, publisher, 'replace "Call us" with "Ring us"', "m-1")
    assert bare_git(origin, "branch", "--list", f"thread-{THREAD}") == ""
    committed = git(checkout_of(root), "rev-parse", "HEAD")

    hook.unlink()
    result = run(project, root, publisher, 'replace "Call us" with "Ring us"', "m-1")

    assert result.commit == committed
    assert result.filesChanged == ["index.html"]
    assert "earlier attempt" in result.summary
    assert bare_git(origin, "rev-parse", f"refs/heads/thread-{THREAD}") == committed


# --- failures ----------------------------------------------------------------------------------------------


def test_build_failure_is_reported_with_its_output_and_publishes_nothing_but_keeps_the_change(
    tmp_path: Path, origin: Path
) -> None:
    project = make_project(origin, buildCommand="echo compiling; echo 'error: bad template' >&2; exit 2")
    publisher = FakePublisher()
    with pytest.raises(BuildFailedError, match="bad template") as failure:
        run(project, tmp_path / "workspaces", publisher, 'replace "Call us" with "Ring us"')
    assert "compiling" in str(failure.value)
    assert publisher.sites == {}
    # The edit is committed and pushed: fixing the build (or a follow-up message) starts from it.
    assert "Ring us" in bare_git(origin, "show", f"thread-{THREAD}:index.html")


def test_build_that_creates_no_output_fails(tmp_path: Path) -> None:
    with pytest.raises(BuildFailedError, match="did not create"):
        run_build(tmp_path, BuildPlan(command="true", output_dir="public"), timeout=10)


def test_output_dir_must_stay_inside_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "out").symlink_to(tmp_path)
    for bad in ("../elsewhere", "/etc", "out"):
        with pytest.raises(ProjectConfigError):
            run_build(tmp_path / "site", BuildPlan(output_dir=bad), timeout=10)


def test_without_a_build_the_checkout_is_published_without_git(tmp_path: Path, origin: Path) -> None:
    publisher = FakePublisher()
    result = run(make_project(origin, buildCommand=""), tmp_path / "ws", publisher, 'replace "Call us" with "Ring us"')
    assert result.filesChanged == ["index.html"]
    assert set(publisher.sites[THREAD]) == {".gitignore", "build.py", "index.html"}


def test_nothing_to_change_pushes_nothing(tmp_path: Path, origin: Path) -> None:
    with pytest.raises(NothingToChangeError, match="Nowhere"):
        run(make_project(origin), tmp_path / "ws", FakePublisher(), 'replace "Nowhere" with "x"')
    assert bare_git(origin, "branch", "--list", f"thread-{THREAD}") == ""


def test_missing_default_branch_is_a_repository_error(tmp_path: Path, origin: Path) -> None:
    with pytest.raises(RepositoryError, match="develop"):
        run(make_project(origin, defaultBranch="develop"), tmp_path / "ws", FakePublisher(), 'replace "a" with "b"')


def test_failed_clone_leaves_nothing_behind(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    project = make_project(tmp_path / "does-not-exist.git")
    with pytest.raises(RepositoryError, match="clone"):
        run(project, root, FakePublisher(), 'replace "a" with "b"')
    assert list((root / "acme" / "alice").iterdir()) == []


def test_mismatched_command_is_refused(tmp_path: Path, origin: Path) -> None:
    message, command = make_message('replace "a" with "b"')
    with pytest.raises(ProjectConfigError):
        run_command(
            make_project(origin, projectId="other"),
            message,
            command,
            workspace_root=tmp_path,
            publisher=FakePublisher(),
            identity=IDENTITY,
        )


# --- never touching an enclosing repository -----------------------------------------------------------------


@pytest.fixture
def outer(tmp_path: Path) -> Path:
    repo = tmp_path / "outer"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("outer\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "outer")
    return repo


def outer_state(repo: Path) -> tuple[str, str, str]:
    return (
        git(repo, "rev-parse", "HEAD"),
        git(repo, "for-each-ref", "--format=%(refname)"),
        (repo / ".git" / "config").read_text(),
    )


def test_workspace_inside_another_checkout_leaves_it_alone(tmp_path: Path, origin: Path, outer: Path) -> None:
    before = outer_state(outer)
    root = outer / "workspaces"
    # A leftover directory with no .git of its own: git run there would find the outer repository.
    broken = checkout_of(root)
    broken.mkdir(parents=True)
    (broken / "index.html").write_text("stray\n")

    result = run(make_project(origin), root, FakePublisher(), 'replace "Call us" with "Ring us"')

    assert outer_state(outer) == before
    assert bare_git(origin, "rev-parse", f"refs/heads/thread-{THREAD}") == result.commit
    assert git(checkout_of(root), "rev-parse", "--show-toplevel") == str(checkout_of(root).resolve())
    aside = [p for p in (root / "acme" / "alice").iterdir() if p.name.startswith("checkout.broken-")]
    assert len(aside) == 1
    assert (aside[0] / "index.html").read_text() == "stray\n"


def test_failed_clone_inside_another_checkout_leaves_it_alone(tmp_path: Path, outer: Path) -> None:
    before = outer_state(outer)
    with pytest.raises(RepositoryError):
        run(make_project(tmp_path / "missing.git"), outer / "ws", FakePublisher(), 'replace "a" with "b"')
    assert outer_state(outer) == before


# --- workspace details -------------------------------------------------------------------------------------


def test_commit_never_stages_excluded_or_ignored_paths(tmp_path: Path, origin: Path) -> None:
    workspace = Workspace(tmp_path / "ws", "acme", "alice", str(origin), "main", IDENTITY)
    workspace.prepare("thread-manual")
    try:
        assert workspace.repo.git.environment()["GIT_CEILING_DIRECTORIES"] == str(workspace.path.parent)
        checkout = workspace.path
        (checkout / "index.html").write_text("changed\n")
        (checkout / "out").mkdir()
        (checkout / "out" / "bundle.js").write_text("built\n")
        (checkout / "dist").mkdir()
        (checkout / "dist" / "index.html").write_text("ignored\n")
        (checkout / "out" / "staged-by-editor.js").write_text("built\n")
        git(checkout, "add", "out/staged-by-editor.js")
        # dist/ is both ignored and excluded, "gone" does not exist: neither may trip git add or reset.
        exclude = {"out", "dist", "gone/"}
        sha, files = workspace.commit("Edit\n\nThread: x\nMessage: y\n", exclude)
        assert files == ["index.html"]
        assert workspace.head() == sha
        assert git(checkout, "show", "--name-only", "--format=", "HEAD") == "index.html"
        with pytest.raises(NothingToChangeError):
            workspace.commit("again", exclude)
    finally:
        workspace.close()


def test_invalid_branch_names_are_refused(tmp_path: Path, origin: Path) -> None:
    workspace = Workspace(tmp_path / "ws", "acme", "alice", str(origin), "main", IDENTITY)
    for bad in ("-f", "a..b", "with space", ""):
        with pytest.raises(RepositoryError):
            workspace.prepare(bad)


def test_unsafe_workspace_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError):
        Workspace(tmp_path, "../etc", "alice", "x", "main", IDENTITY)


def test_commit_message_shape() -> None:
    long_line = "replace " + "x" * 100
    message = commit_message(f"\n\n{long_line}\nsecond line\n", THREAD, "m-9")
    subject, blank, *_rest = message.split("\n")
    assert len(subject) == 72
    assert subject.endswith("…")
    assert blank == ""
    assert message.endswith(f"\n\nThread: {THREAD}\nMessage: m-9\n")


# --- the S3 publisher against a stub client ----------------------------------------------------------------


def test_content_types() -> None:
    assert content_type(Path("a.css")) == "text/css; charset=utf-8"
    assert content_type(Path("a.js")) == "text/javascript; charset=utf-8"
    assert content_type(Path("a.svg")) == "image/svg+xml; charset=utf-8"
    assert content_type(Path("a.woff2")) == "font/woff2"
    assert content_type(Path("noext")) == "application/octet-stream"


def test_fixture_uses_a_real_bare_repository(origin: Path) -> None:
    assert bare_git(origin, "rev-parse", "--is-bare-repository") == "true"
    assert shutil.which("git")


def test_output_dir_is_never_a_pattern(tmp_path: Path, origin: Path) -> None:
    workspace = Workspace(tmp_path / "ws", "acme", "alice", str(origin), "main", IDENTITY)
    workspace.prepare("thread-manual")
    (workspace.path / "dist").mkdir()
    (workspace.path / "dist" / "cache.html").write_text("keep\n")  # ignored, so only git clean could remove it
    workspace.prepare("thread-manual", exclude={"*", "..", "."})
    workspace.close()
    assert (workspace.path / "dist" / "cache.html").exists()


def test_bad_output_dir_fails_before_any_git_work(tmp_path: Path, origin: Path) -> None:
    root = tmp_path / "ws"
    with pytest.raises(ProjectConfigError):
        run(make_project(origin, outputDir="../../etc"), root, FakePublisher(), 'replace "Call us" with "Ring us"')
    assert not root.exists()


def test_the_git_token_reaches_the_workers_own_git_calls_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import json
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from container.worker.editors import sanitised_env

    workspace = Workspace(tmp_path, "acme", "alice", "https://git.example/acme/site.git", "", IDENTITY, "s3cret")
    env = workspace.git_env
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader" and "s3cret" not in json.dumps(env)
    assert base64.b64decode(env["GIT_CONFIG_VALUE_0"].split()[-1]) == b"x-access-token:s3cret"
    local = Workspace(tmp_path, "acme", "alice", str(tmp_path / "site.git"), "", IDENTITY, "s3cret")
    assert "GIT_CONFIG_COUNT" not in local.git_env  # nothing to authenticate to
    monkeypatch.setenv("WEBORDINARY_GIT_TOKEN", "s3cret")
    assert "s3cret" not in json.dumps(sanitised_env())  # agents and builds never see it

    # git itself sends it: a smart-HTTP server records what the first request carries.
    seen: list[str] = []

    class Remote(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Remote)
    threading.Thread(target=server.handle_request, daemon=True).start()
    subprocess.run(
        ["git", "ls-remote", f"http://127.0.0.1:{server.server_address[1]}/acme/site.git"],
        env={**sanitised_env(), **env},
        capture_output=True,
        timeout=30,
    )
    server.server_close()
    assert seen and seen[0] == env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: ")


class _FailingUpload(FakePublisher):
    def publish(self, site_dir: Path, project_id: str, thread_id: str, commit: str) -> PublishedPreview:
        raise PreviewUploadError("Could not upload the preview: S3 said no")


def test_a_failed_upload_still_leaves_the_change_pushed_and_the_retry_publishes_it(
    tmp_path: Path, origin: Path
) -> None:
    # The upload and the push run at once; a failed upload must not strand the commit, and the retry of the
    # same message finds it instead of editing again.
    project = make_project(origin)
    with pytest.raises(PreviewUploadError):
        run(project, tmp_path / "ws", _FailingUpload(), 'replace "555-0100" with "555-0199"')
    pushed = bare_git(origin, "rev-parse", f"refs/heads/thread-{THREAD}")
    assert "555-0199" in bare_git(origin, "show", f"{pushed}:index.html")

    publisher = FakePublisher()
    again = run(project, tmp_path / "ws", publisher, 'replace "555-0100" with "555-0199"')

    assert again.commit == pushed and "555-0199" in publisher.sites[THREAD]["index.html"].decode()


def test_the_refs_a_command_starts_from_are_read_in_one_call(tmp_path: Path, origin: Path) -> None:
    from container.worker.workspace import commits_of, head_sha

    run(make_project(origin), tmp_path / "ws", FakePublisher(), 'replace "555-0100" with "555-0199"')
    checkout = checkout_of(tmp_path / "ws")
    git(checkout, "remote", "set-head", "origin", "main")
    workspace = Workspace(tmp_path / "ws", "acme", "alice", str(origin), "", IDENTITY)
    workspace.prepare(f"thread-{THREAD}", take_default=False)
    try:
        wanted = [f"refs/heads/thread-{THREAD}", "refs/remotes/origin/HEAD", "refs/heads/thread-none", "refs/heads"]
        found = commits_of(workspace.repo, wanted)
        assert found == {
            f"refs/heads/thread-{THREAD}": git(checkout, "rev-parse", "HEAD"),
            "refs/remotes/origin/HEAD": bare_git(origin, "rev-parse", "refs/heads/main"),  # the symref's target
        }
        assert head_sha(workspace.repo) == workspace.head() == git(checkout, "rev-parse", "HEAD")
    finally:
        workspace.close()
