"""Real git repositories for the worker's tests: a seeded bare ``origin``, git run as a seeding user, a
publisher that keeps what it was given, and the WIP refs a dead run's leftovers are kept on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from container.worker.preview import PublishedPreview, site_files
from container.worker.workspace import WIP_REF_PREFIX
from workflows.models import Command, NormalisedMessage
from workflows.threads import branch_for

SEEDER = {
    "GIT_AUTHOR_NAME": "Seeder",
    "GIT_AUTHOR_EMAIL": "seeder@example.com",
    "GIT_COMMITTER_NAME": "Seeder",
    "GIT_COMMITTER_EMAIL": "seeder@example.com",
}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **SEEDER, "GIT_CEILING_DIRECTORIES": str(cwd.parent)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def bare_git(bare: Path, *args: str) -> str:
    return git(bare, f"--git-dir={bare}", *args)


def seed_origin(bare: Path, files: dict[str, str]) -> Path:
    """A bare repository at ``bare`` whose ``main`` holds ``files`` in one commit."""
    bare.mkdir(parents=True)
    git(bare, "init", "-q", "--bare", "-b", "main")
    seed = bare.parent / f"{bare.name}-seed"
    git(bare.parent, "clone", "-q", str(bare), str(seed))
    for relative, text in files.items():
        (seed / relative).parent.mkdir(parents=True, exist_ok=True)
        (seed / relative).write_text(text)
    git(seed, "checkout", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "Initial site")
    git(seed, "push", "-q", "origin", "main")
    return bare


def isolate_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of our own, so any write to global git config would show up (and not touch the real one)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_CONFIG_GLOBAL", "GIT_DIR", "GIT_WORK_TREE", *SEEDER):
        monkeypatch.delenv(name, raising=False)
    return home


class FakePublisher:
    """Keeps each thread's published files instead of uploading them."""

    def __init__(self) -> None:
        self.sites: dict[str, dict[str, bytes]] = {}
        self.screenshots: dict[str, bytes] = {}

    def publish(self, site_dir: Path, project_id: str, thread_id: str, commit: str) -> PublishedPreview:
        self.sites[thread_id] = {relative: path.read_bytes() for relative, path in site_files(site_dir)}
        self.sites[commit[:7]] = self.sites[thread_id]
        url, version_url = self.urls(project_id, thread_id, commit)
        return PublishedPreview(url=url, version_url=version_url)

    def urls(self, project_id: str, thread_id: str, commit: str) -> tuple[str, str]:
        return f"https://{thread_id}-{project_id}.preview.test/", f"https://{commit[:7]}-{project_id}.preview.test/"

    def store_screenshot(self, key: str, png: bytes) -> None:
        self.screenshots[key] = png

    def publish_site(self, site_dir: Path, project_id: str) -> PublishedPreview:
        self.sites[f"live:{project_id}"] = {relative: path.read_bytes() for relative, path in site_files(site_dir)}
        return PublishedPreview(url=f"https://{project_id}.site.test/", version_url="")


def checkout_of(root: Path, project_id: str = "acme", user_id: str = "alice") -> Path:
    return root / project_id / user_id / "checkout"


def wip_refs(repo: Path, bare: bool = False) -> dict[str, str]:
    """The refs a dead run's leftovers were kept aside on: name -> commit."""
    listing = (bare_git if bare else git)(repo, "for-each-ref", "--format=%(refname) %(objectname)", WIP_REF_PREFIX)
    return dict(line.split(" ", 1) for line in listing.splitlines())


def message_and_command(instruction: str, message_id: str, thread: str) -> tuple[NormalisedMessage, Command]:
    """A message from alice for project acme and the command the workflow would dispatch for it."""
    message = NormalisedMessage(
        messageId=message_id,
        projectId="acme",
        threadId=thread,
        userId="alice",
        sender="alice@example.com",
        instruction=instruction,
        receivedAt="2024-01-01T00:00:00Z",
        rawKey=f"raw/{message_id}",
    )
    command = Command(
        messageId=message_id,
        threadId=thread,
        projectId="acme",
        userId="alice",
        branch=branch_for(thread),
        messageKey=f"messages/{message_id}.json",
        executionName=f"{thread}-{message_id}",
    )
    return message, command
