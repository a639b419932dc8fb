"""The site's build step: run the project's build command and find the output directory."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from container.worker.cancel import Cancellation
from container.worker.editors import run_shell, sanitised_env
from workflows.errors import BuildFailedError, ProjectConfigError

_BUILD_TAIL_LINES = 30


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


def run_build(
    checkout: Path, command: str, output_dir: str, timeout: float, cancel: Cancellation | None = None
) -> Path:
    """Build the site and return the directory to publish.

    Without a build command the site is published as committed: ``output_dir`` if it exists, else the whole
    checkout (the publisher leaves ``.git`` out).
    """
    output = output_path(checkout, output_dir)
    if not command.strip():
        return output if output.is_dir() else checkout.resolve()
    result = run_shell(command, checkout, sanitised_env(), timeout, cancel=cancel)
    result.check("build", timeout, cancel, BuildFailedError, _BUILD_TAIL_LINES)
    # Checked again after the build: it may have created the directory, or replaced it with a symlink.
    output = output_path(checkout, output_dir)
    if not output.is_dir():
        raise BuildFailedError(f"The build finished but did not create {output_dir!r}.")
    return output
