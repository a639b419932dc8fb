"""The site's build step: work out how the site builds, install its dependencies (from a cache keyed by the
lockfile), run the build and find what to publish.

- A configured build command runs as given; otherwise a ``package.json`` with a ``build`` script is built
  with the tool its lockfile names (``npm ci`` for ``package-lock.json``; pnpm or yarn when their lockfile is
  there and the tool is installed), then ``{tool} run build``. A site with neither is published as committed.
- Dependencies are installed once per lockfile: the installed ``node_modules`` is moved to
  ``{cache}/node_modules/{key}/`` on the worker's persistent volume and the checkout links to it, so the
  next build with the same lockfile, in any checkout of that worker's volume, installs nothing.
- The output directory is the configured one, or the first of ``dist``, ``build``, ``out``, ``_site``,
  ``public`` that the build wrote (a ``public/`` the build only read is a source folder, not the output).

Installs and builds get the sanitised environment: no worker credentials reach site tooling.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shlex
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from container.worker.cancel import Cancellation
from container.worker.editors import run_shell, sanitised_env
from workflows.errors import BuildFailedError, ProjectConfigError

_BUILD_TAIL_LINES = 30
OUTPUT_CANDIDATES = ("dist", "build", "out", "_site", "public")
NODE_MODULES = "node_modules"
_INSTALL = {
    "npm": ("npm", "ci", "--no-audit", "--no-fund"),
    "pnpm": ("pnpm", "install", "--frozen-lockfile"),
    "yarn": ("yarn", "install", "--frozen-lockfile"),
}
_LOCKFILES = (
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
)


@dataclass(frozen=True)
class BuildPlan:
    install: tuple[str, ...] = ()  # argv of the dependency install; () = nothing to install
    install_key: str = ""  # the dependency cache's key: what was installed from (lockfile, tool, platform)
    command: str = ""  # the build, a shell command; "" = publish as committed
    output_dir: str = ""  # "" = the first candidate the build wrote


@dataclass(frozen=True)
class BuiltSite:
    path: Path  # what to publish
    installed: bool = False  # dependencies were installed (not taken from the cache)


def check_output_dir(output_dir: str) -> PurePosixPath:
    """The output directory as a relative path; checked before any work so a bad setting fails early."""
    relative = PurePosixPath(output_dir.strip().replace("\\", "/") or ".")
    if relative.is_absolute() or ".." in relative.parts:
        raise ProjectConfigError(f"The output directory {output_dir!r} must be a path inside the repository.")
    return relative


def output_path(checkout: Path, output_dir: str) -> Path:
    """``checkout/output_dir``, refusing anything that would publish files from outside the checkout."""
    relative = check_output_dir(output_dir)
    root = checkout.resolve()
    path = (root / relative).resolve()
    # resolve() follows symlinks: a committed "dist -> /etc" must not pass.
    if not path.is_relative_to(root):
        raise ProjectConfigError(f"The output directory {output_dir!r} points outside the repository.")
    return path


def plan_build(
    checkout: Path, command: str, output_dir: str, available: Callable[[str], object | None] = shutil.which
) -> BuildPlan:
    """How this checkout builds (pure apart from reading ``package.json`` and the lockfile)."""
    manifest_path = checkout / "package.json"
    if not manifest_path.is_file():
        return BuildPlan(command=command.strip(), output_dir=output_dir.strip())
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BuildFailedError(f"package.json could not be read: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BuildFailedError("package.json is not a JSON object.")
    tool, lockfile = "npm", None
    for name, candidate in _LOCKFILES:
        if (checkout / name).is_file() and available(candidate):
            tool, lockfile = candidate, checkout / name
            break
    install: tuple[str, ...] = ()
    key = ""
    if manifest.get("dependencies") or manifest.get("devDependencies"):
        install = _INSTALL[tool] if lockfile is not None else ("npm", "install", "--no-audit", "--no-fund")
        basis = lockfile.read_bytes() if lockfile is not None else manifest_path.read_bytes()
        key = hashlib.sha256(b"\0".join([basis, tool.encode(), platform.machine().encode()])).hexdigest()[:24]
    scripts = manifest.get("scripts") if isinstance(manifest.get("scripts"), dict) else {}
    build = command.strip() or (f"{tool} run build" if isinstance(scripts, dict) and scripts.get("build") else "")
    return BuildPlan(install=install, install_key=key, command=build, output_dir=output_dir.strip())


def run_build(
    checkout: Path,
    plan: BuildPlan,
    timeout: float,
    cancel: Cancellation | None = None,
    cache_root: Path | None = None,
) -> BuiltSite:
    """Install (or reuse) dependencies, build, and return the directory to publish.

    Without a build the site is published as committed: the output directory if it exists, else the whole
    checkout (the publisher leaves ``.git`` out).
    """
    if plan.output_dir:
        output_path(checkout, plan.output_dir)  # a bad setting fails before anything runs
    if not plan.command:
        configured = output_path(checkout, plan.output_dir) if plan.output_dir else None
        return BuiltSite(configured if configured is not None and configured.is_dir() else checkout.resolve())
    installed = False
    if plan.install:
        installed = _dependencies(checkout, plan, timeout, cancel, cache_root or checkout.parent / ".cache")
    started = time.time()
    result = run_shell(plan.command, checkout, sanitised_env(), timeout, cancel=cancel)
    result.check("build", timeout, cancel, BuildFailedError, _BUILD_TAIL_LINES)
    # Checked after the build: it may have created the directory, or replaced it with a symlink.
    if plan.output_dir:
        output = output_path(checkout, plan.output_dir)
        if not output.is_dir():
            raise BuildFailedError(f"The build finished but did not create {plan.output_dir!r}.")
    else:
        output = _written_output(checkout, started)
    ignore_locally(checkout, [output.relative_to(checkout.resolve()).as_posix()])
    return BuiltSite(output, installed)


def _written_output(checkout: Path, started: float) -> Path:
    existing = [output_path(checkout, name) for name in OUTPUT_CANDIDATES]
    existing = [path for path in existing if path.is_dir()]
    written = [path for path in existing if _newest_mtime(path) >= started - 1]
    if written or existing:
        return (written or existing)[0]
    raise BuildFailedError(f"The build finished but wrote none of {', '.join(OUTPUT_CANDIDATES)}.")


def _newest_mtime(directory: Path) -> float:
    newest = directory.stat().st_mtime
    for root, _dirs, files in os.walk(directory):
        for name in files[:200]:  # enough to tell a fresh build from an old folder
            with contextlib.suppress(OSError):
                newest = max(newest, (Path(root) / name).stat().st_mtime)
    return newest


def _dependencies(checkout: Path, plan: BuildPlan, timeout: float, cancel: Cancellation | None, cache: Path) -> bool:
    """Link the checkout's node_modules to the cached install for this lockfile, installing it first if no
    build on this volume has. Returns whether it installed."""
    ignore_locally(checkout, [NODE_MODULES])
    cached = cache / NODE_MODULES / plan.install_key / NODE_MODULES
    link = checkout / NODE_MODULES
    if cached.is_dir():
        _link(link, cached)
        return False
    _remove(link)
    env = sanitised_env({"npm_config_cache": str(cache / "npm"), "npm_config_update_notifier": "false"})
    result = run_shell(shlex.join(plan.install), checkout, env, timeout, cancel=cancel)
    result.check("install", timeout, cancel, BuildFailedError, _BUILD_TAIL_LINES)
    if not link.is_dir():
        return True  # nothing was installed (no dependencies after all): nothing to cache
    # Move the install into the cache atomically; a concurrent install of the same lockfile may win.
    staging = cache / NODE_MODULES / f".{plan.install_key}.{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    link.rename(staging / NODE_MODULES)
    try:
        staging.rename(cached.parent)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    _link(link, cached)
    return True


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    _remove(link)
    link.symlink_to(target, target_is_directory=True)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def ignore_locally(checkout: Path, paths: list[str]) -> None:
    """Keep build artefacts out of commits without touching the site's .gitignore: ``.git/info/exclude``."""
    exclude = checkout / ".git" / "info" / "exclude"
    if not (checkout / ".git").is_dir():
        return
    exclude.parent.mkdir(parents=True, exist_ok=True)
    lines = exclude.read_text(encoding="utf-8").splitlines() if exclude.is_file() else []
    wanted = [f"/{path.strip('/')}" for path in paths if path.strip("/") and path.strip("/") != "."]
    missing = [line for line in wanted if line not in lines]
    if missing:
        exclude.write_text("\n".join([*lines, *missing]) + "\n", encoding="utf-8")
