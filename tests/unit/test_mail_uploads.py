"""The worker's side of attachments: the message's files in the checkout's uploads/ folder, checked, never
committed, never clobbering the site's own files, and described to the agent."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from container.worker.attachments import (
    FALLBACK_UPLOADS_DIR,
    MARKER,
    UPLOADS_DIR,
    prepare_uploads,
    s3_fetcher,
)
from workflows.errors import WorkerCrashedError
from workflows.models import AttachmentRef, NormalisedMessage

PNG = b"\x89PNG\r\n\x1a\n" + bytes(40)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", bytes(5 * 1024 * 1024))
    return buffer.getvalue()


def _ref(name: str, data: bytes, kind: str = "image", content_type: str = "image/png") -> AttachmentRef:
    digest = hashlib.sha256(data).hexdigest()
    return AttachmentRef(
        filename=name, contentType=content_type, size=len(data), sha256=digest, key=f"attachments/{digest}", kind=kind
    )


def _message(*refs: AttachmentRef, skipped: tuple[str, ...] = ()) -> NormalisedMessage:
    return NormalisedMessage(
        messageId="ses-1",
        projectId="bakery",
        threadId="ab3k9x2m",
        userId="alice-1a2b3c",
        sender="alice@example.com",
        instruction="Use the logo in the header.",
        receivedAt="2026-11-23T09:15:00.000Z",
        rawKey="inbound/ses-1",
        attachments=list(refs),
        skippedAttachments=list(skipped),
    )


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    _git(path, "init", "-q")
    (path / "index.html").write_text("<h1>Bakery</h1>")
    return path


def test_attachments_land_in_uploads_checked_and_never_committed(checkout: Path) -> None:
    bomb = _zip()
    store = {f"attachments/{hashlib.sha256(d).hexdigest()}": d for d in (PNG, bomb)}
    message = _message(_ref("logo.png", PNG), _ref("photos.zip", bomb, "document", "application/zip"))

    uploads = prepare_uploads(checkout, message, store.__getitem__)

    assert uploads.directory == UPLOADS_DIR and uploads.excluded == {UPLOADS_DIR}
    assert uploads.files == ("uploads/logo.png", "uploads/photos.zip")
    assert (checkout / "uploads" / "logo.png").read_bytes() == PNG
    assert (checkout / "uploads" / "photos.zip").read_bytes() == bomb  # a zip stays a zip: nothing unpacked
    assert sorted(p.name for p in (checkout / "uploads").iterdir()) == sorted([MARKER, "logo.png", "photos.zip"])
    assert "/uploads/" in (checkout / ".git" / "info" / "exclude").read_text().splitlines()
    assert "uploads" not in _git(checkout, "status", "--porcelain", "--untracked-files=all")
    instruction = uploads.instruction_for(message.instruction)
    assert instruction.startswith("Use the logo in the header.\n\nThe user attached these files.")
    assert "- uploads/logo.png (image, image/png, 1 KB)" in instruction
    assert "- uploads/photos.zip (document, application/zip" in instruction


def test_every_command_gets_only_its_own_files(checkout: Path) -> None:
    store = {f"attachments/{hashlib.sha256(PNG).hexdigest()}": PNG}
    prepare_uploads(checkout, _message(_ref("logo.png", PNG)), store.__getitem__)
    uploads = prepare_uploads(checkout, _message(), store.__getitem__)
    assert uploads.directory == "" and uploads.note == "" and not (checkout / "uploads").exists()
    assert uploads.instruction_for("Make it blue.") == "Make it blue."


def test_the_sites_own_uploads_folder_is_never_touched(checkout: Path) -> None:
    (checkout / "uploads").mkdir()
    (checkout / "uploads" / "existing.jpg").write_bytes(b"site file")
    _git(checkout, "add", "-A")
    store = {f"attachments/{hashlib.sha256(PNG).hexdigest()}": PNG}
    uploads = prepare_uploads(checkout, _message(_ref("existing.jpg", PNG)), store.__getitem__)
    assert uploads.directory == FALLBACK_UPLOADS_DIR
    assert (checkout / "uploads" / "existing.jpg").read_bytes() == b"site file"
    assert (checkout / FALLBACK_UPLOADS_DIR / "existing.jpg.png").read_bytes() == PNG
    exclude = (checkout / ".git" / "info" / "exclude").read_text().splitlines()
    assert f"/{FALLBACK_UPLOADS_DIR}/" in exclude and "/uploads/" not in exclude


def test_a_planted_symlink_is_not_followed(checkout: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (checkout / "uploads").symlink_to(elsewhere, target_is_directory=True)
    store = {f"attachments/{hashlib.sha256(PNG).hexdigest()}": PNG}
    uploads = prepare_uploads(checkout, _message(_ref("logo.png", PNG)), store.__getitem__)
    assert uploads.directory == FALLBACK_UPLOADS_DIR and list(elsewhere.iterdir()) == []


def test_names_are_made_safe_again_and_checksums_are_checked(checkout: Path) -> None:
    store = {f"attachments/{hashlib.sha256(PNG).hexdigest()}": PNG}
    hostile = _ref("../../.git/hooks/pre-commit", PNG)
    uploads = prepare_uploads(checkout, _message(hostile, hostile), store.__getitem__)
    assert uploads.files == ("uploads/pre-commit.png", "uploads/pre-commit-2.png")
    assert not (checkout / ".git" / "hooks" / "pre-commit").exists()
    tampered = _ref("logo.png", PNG + b"x")
    with pytest.raises(WorkerCrashedError, match="checksum"):
        prepare_uploads(checkout, _message(tampered), lambda key: PNG)


def test_skipped_attachments_are_mentioned(checkout: Path) -> None:
    uploads = prepare_uploads(checkout, _message(skipped=("setup.exe: programs are not accepted",)), lambda k: b"")
    assert uploads.note == "Files the user sent that were not accepted:\n- setup.exe: programs are not accepted"


def test_the_s3_fetcher_reads_the_mail_bucket() -> None:
    class FakeBody:
        def read(self) -> bytes:
            return PNG

    class FakeS3:
        def get_object(self, Bucket: str, Key: str) -> dict[str, object]:
            assert (Bucket, Key) == ("mail", "attachments/x")
            return {"Body": FakeBody()}

    assert s3_fetcher(FakeS3(), "mail")("attachments/x") == PNG
