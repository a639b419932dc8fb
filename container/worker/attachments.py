"""The user's attachments inside the checkout, where the agent can use them.

Intake stored each attachment content-addressed in the mail bucket and listed it in the normalised message;
here they are fetched, checked against their sha256, and written into ``uploads/`` at the root of the
checkout, fresh for every command (only this message's files). The folder is listed in ``.git/info/exclude``
so nothing in it is committed unless the agent copies a file into the site (``cp uploads/logo.png
src/img/``). The agent is told about the files in a note appended to its instruction.

Files are only ever written, never opened or unpacked: a zip stays a zip.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflows.attachments import sanitise_filename, unique_names
from workflows.errors import WorkerCrashedError
from workflows.models import NormalisedMessage

UPLOADS_DIR = "uploads"
# When the site itself has an uploads/ folder we never touch it; ours then lives here.
FALLBACK_UPLOADS_DIR = "webordinary-uploads"
MARKER = ".webordinary-uploads"  # marks a folder as ours, so clearing it can never delete the site's files

Fetch = Callable[[str], bytes]


def s3_fetcher(s3: Any, bucket: str) -> Fetch:
    def fetch(key: str) -> bytes:
        data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return data

    return fetch


@dataclass(frozen=True)
class Uploads:
    directory: str  # relative to the checkout; "" when the message has no attachments
    files: tuple[str, ...]  # relative to the checkout
    note: str  # what the agent is told; "" when there is nothing to say

    @property
    def excluded(self) -> set[str]:
        """For the editor's and the commit's ``exclude`` set."""
        return {self.directory} if self.directory else set()

    def instruction_for(self, instruction: str) -> str:
        return f"{instruction}\n\n{self.note}" if self.note else instruction


def _ours_or_free(checkout: Path, name: str) -> bool:
    path = checkout / name
    if path.is_symlink():
        return False
    return not path.exists() or (path.is_dir() and (path / MARKER).is_file())


def _choose_directory(checkout: Path) -> str:
    for name in (UPLOADS_DIR, FALLBACK_UPLOADS_DIR):
        if _ours_or_free(checkout, name):
            return name
    raise WorkerCrashedError(
        f"both {UPLOADS_DIR}/ and {FALLBACK_UPLOADS_DIR}/ belong to the site; cannot place uploads"
    )


def _exclude_from_git(checkout: Path, directory: str) -> None:
    git_dir = checkout / ".git"
    if not git_dir.is_dir():
        return  # not a plain checkout: the caller's exclude set still keeps the folder out of commits
    exclude = git_dir / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    line = f"/{directory}/"
    ours = {f"/{name}/" for name in (UPLOADS_DIR, FALLBACK_UPLOADS_DIR)}
    existing = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
    # Only the folder in use: a stale "/uploads/" would hide new files the agent adds to a site's own uploads/.
    kept = [entry for entry in existing if entry not in ours or entry == line]
    if line not in kept:
        kept.append(line)
    if kept != existing:
        exclude.write_text("\n".join(kept) + "\n", encoding="utf-8")


def _size(count: int) -> str:
    return f"{count / 1024 / 1024:.1f} MB" if count >= 1024 * 1024 else f"{max(1, round(count / 1024))} KB"


def clear_uploads(checkout: Path) -> None:
    """Remove our uploads folders (never the site's own): before a command, and after it if wanted."""
    for name in (UPLOADS_DIR, FALLBACK_UPLOADS_DIR):
        path = checkout / name
        if not path.is_symlink() and path.is_dir() and (path / MARKER).is_file():
            shutil.rmtree(path)


def prepare_uploads(checkout: Path, message: NormalisedMessage, fetch: Fetch) -> Uploads:
    """Write the message's attachments into the checkout and describe them for the agent."""
    clear_uploads(checkout)
    skipped = [f"- {entry}" for entry in message.skippedAttachments]
    if not message.attachments:
        note = "Files the user sent that were not accepted:\n" + "\n".join(skipped) if skipped else ""
        return Uploads(directory="", files=(), note=note)
    directory = _choose_directory(checkout)
    target = checkout / directory
    target.mkdir()
    (target / MARKER).write_text("Files from the user's email; this folder is rewritten for every request.\n")
    _exclude_from_git(checkout, directory)
    # Intake sanitised the names already; again here, because this is where a bad name would do harm.
    names = unique_names(
        [sanitise_filename(ref.filename, ref.contentType, i) for i, ref in enumerate(message.attachments, 1)]
    )
    files: list[str] = []
    lines: list[str] = []
    for ref, name in zip(message.attachments, names, strict=True):
        data = fetch(ref.key)
        if hashlib.sha256(data).hexdigest() != ref.sha256 or len(data) != ref.size:
            raise WorkerCrashedError(f"attachment {name} does not match its checksum; fetching it again may help")
        path = target / name
        if path.resolve().parent != target.resolve():
            raise WorkerCrashedError(f"attachment name {name!r} would leave {directory}/")
        with path.open("xb") as handle:  # a fresh folder: "x" also refuses to follow anything planted there
            handle.write(data)
        files.append(f"{directory}/{name}")
        lines.append(f"- {directory}/{name} ({ref.kind}, {ref.contentType}, {_size(ref.size)})")
    note = (
        f"The user attached these files. They are in {directory}/ at the root of the checkout, which is not part "
        f"of the site and is never committed: copy a file into the site where it belongs (for example an "
        f"image into the site's image folder) and refer to it there.\n" + "\n".join(lines)
    )
    if skipped:
        note += "\nFiles the user sent that were not accepted:\n" + "\n".join(skipped)
    return Uploads(directory=directory, files=tuple(files), note=note)
