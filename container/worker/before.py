"""The "before" of a change's pictures: the same pages on the default branch's build.

The default branch is built in a git worktree beside the thread's checkout (its own folder, so the thread's
build output and uncommitted state are never touched), with the same dependency cache. Pictures are kept on
the workspace volume by the default branch's commit and page, so the next change of any thread against the
same live version takes them from there instead of building again. Everything here is best effort: no
"before" picture is a plain absence, never a failure.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

import git

from container.worker.build import plan_build, run_build
from container.worker.cancel import Cancellation, CommandCancelledError
from container.worker.screenshot import ScreenshotError, screenshots
from container.worker.workspace import Workspace
from workflows.errors import WebOrdinaryError
from workflows.models import Project
from workflows.previews import page_slug

log = logging.getLogger("webordinary.worker.before")
WORKTREE = "before"  # beside the checkout: root/project/user/before


def before_pictures(
    workspace: Workspace,
    project: Project,
    pages: list[str],
    browser: str | None,
    *,
    cache_root: Path,
    build_timeout: float,
    cancel: Cancellation,
) -> dict[str, bytes]:
    """page -> PNG of that page on the default branch's build; pages it does not have are left out."""
    base = workspace.default_commit()
    if base is None or browser is None or not pages:
        return {}
    kept = cache_root / "before" / project.projectId / base
    found = {page: (kept / f"{page_slug(page)}.png") for page in pages}
    missing = [
        page for page, path in found.items() if not path.is_file() and not (kept / f"{page_slug(page)}.none").exists()
    ]
    if missing:
        try:
            _picture(workspace, project, base, missing, browser, kept, cache_root, build_timeout, cancel)
        except CommandCancelledError:
            raise
        except (WebOrdinaryError, git.GitCommandError, OSError, ValueError) as exc:
            log.info("no before pictures for %s at %s: %s", project.projectId, base[:12], exc)
            return {}
    return {page: path.read_bytes() for page, path in found.items() if path.is_file()}


def _picture(
    workspace: Workspace,
    project: Project,
    base: str,
    pages: list[str],
    browser: str,
    kept: Path,
    cache_root: Path,
    build_timeout: float,
    cancel: Cancellation,
) -> None:
    tree = workspace.path.parent / WORKTREE
    repo = workspace.repo
    _remove(repo, tree)
    repo.git.worktree("add", "--detach", "--force", str(tree), base)
    try:
        plan = plan_build(tree, project.buildCommand, project.outputDir)
        site = run_build(tree, plan, build_timeout, cancel, cache_root).path
        try:
            shots = screenshots(site, [], browser, cancel=cancel, pages=pages)
        except ScreenshotError as exc:
            log.info("no before pictures: %s", exc)
            return
        kept.mkdir(parents=True, exist_ok=True)
        taken = {shot.page for shot in shots}
        for shot in shots:
            (kept / f"{page_slug(shot.page)}.png").write_bytes(shot.png)
        for page in pages:
            if page not in taken:
                (kept / f"{page_slug(page)}.none").touch()  # the live site has no such page: a new one
    finally:
        _remove(repo, tree)


def _remove(repo: git.Repo, tree: Path) -> None:
    with contextlib.suppress(git.GitCommandError):
        repo.git.worktree("remove", "--force", str(tree))
    shutil.rmtree(tree, ignore_errors=True)
    with contextlib.suppress(git.GitCommandError):
        repo.git.worktree("prune")
