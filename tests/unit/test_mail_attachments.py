# ruff: noqa: RUF001  (full-width and bidi characters in file names are the point)
"""Attachments (pure): what a file really is, names that are safe anywhere, content-addressed keys."""

from __future__ import annotations

import io
import zipfile

import pytest

from workflows import attachments as att

PNG = b"\x89PNG\r\n\x1a\n" + bytes(20)
JPEG = b"\xff\xd8\xff\xe0" + bytes(20)
PDF = b"%PDF-1.7\n"
EXE = b"MZ" + bytes(60)
ELF = b"\x7fELF" + bytes(20)


@pytest.mark.parametrize(
    "name,declared,data,kind,content_type",
    [
        ("logo.png", "image/png", PNG, "image", "image/png"),
        ("photo", "application/octet-stream", JPEG, "image", "image/jpeg"),
        ("menu.pdf", "image/png", PNG, "image", "image/png"),  # the bytes win over the name
        ("menu.pdf", "application/pdf", PDF, "document", "application/pdf"),
        ("logo.png", "image/png", EXE, "executable", "application/x-msdownload"),  # an executable calling itself a PNG
        ("tool", "application/octet-stream", ELF, "executable", "application/x-executable"),
        ("setup.EXE", "application/octet-stream", b"text", "executable", "application/octet-stream"),
        ("run.bat", "text/plain", b"@echo off", "executable", "text/plain"),
        ("app.js", "application/javascript", b"console.log(1)", "document", "application/javascript"),
        ("fake.png", "image/png", b"not an image", "document", "application/octet-stream"),
        ("draw.svg", "image/svg+xml", b'<?xml version="1.0"?><svg xmlns="x"/>', "image", "image/svg+xml"),
        ("page.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK\x03\x04xx",
         "document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("a.zip", "image/png", b"PK\x03\x04xx", "document", "application/zip"),
        ("x", "bogus type!", b"hello", "document", "application/octet-stream"),
        ("pic.webp", "", b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image", "image/webp"),
        ("pic.heic", "", b"\x00\x00\x00\x18ftypheic", "image", "image/heic"),
    ],
)  # fmt: skip
def test_classify_trusts_bytes_over_names_and_declared_types(
    name: str, declared: str, data: bytes, kind: str, content_type: str
) -> None:
    assert att.classify(name, declared, data) == (kind, content_type)


@pytest.mark.parametrize(
    "name,content_type,expected",
    [
        ("logo.png", "image/png", "logo.png"),
        ("../../../../var/www/logo.png", "image/png", "logo.png"),
        ("..\\..\\Windows\\win.ini", "text/plain", "win.ini"),
        ("C:\\Users\\me\\photo.jpg", "image/jpeg", "photo.jpg"),
        (".htaccess", "text/plain", "htaccess"),
        ("..", "text/plain", "attachment-3.txt"),
        ("", "image/png", "attachment-3.png"),
        ("   ", "application/pdf", "attachment-3.pdf"),
        ("menu\x07\tdraft\r\n\x00.pdf", "application/pdf", "menu draft.pdf"),
        ("invoice\u202efdp.exe", "application/octet-stream", "invoicefdp.exe"),  # no bidi override spoofing
        ("zero\u200bwidth.txt", "text/plain", "zerowidth.txt"),
        ('a<b>c:d"e|f?g*h.txt', "text/plain", "a_b_c_d_e_f_g_h.txt"),
        ("CON.txt", "text/plain", "_CON.txt"),
        ("nul", "text/plain", "_nul"),
        ("photo.pdf", "image/png", "photo.pdf.png"),  # an image gets an image extension
        ("ｌｏｇｏ.png", "image/png", "logo.png"),  # NFKC: full-width letters
        ("Team Photo 2026.png", "image/png", "Team Photo 2026.png"),
        ("Öffnungszeiten.pdf", "application/pdf", "Öffnungszeiten.pdf"),
    ],
)
def test_filenames_are_one_safe_component(name: str, content_type: str, expected: str) -> None:
    assert att.sanitise_filename(name, content_type, 3) == expected


def test_long_filenames_keep_their_extension() -> None:
    name = att.sanitise_filename("x" * 500 + ".pdf", "application/pdf", 1)
    assert len(name) == att.MAX_FILENAME_CHARS and name.endswith(".pdf")


def test_duplicate_names_are_numbered_case_insensitively() -> None:
    assert att.unique_names(["photo.jpg", "Photo.JPG", "photo.jpg", "notes"]) == [
        "photo.jpg",
        "Photo-2.JPG",
        "photo-3.jpg",
        "notes",
    ]


def test_storage_is_content_addressed() -> None:
    one = att.Attachment(filename="a.png", content_type="image/png", kind="image", data=PNG)
    two = att.Attachment(filename="b.png", content_type="image/png", kind="image", data=PNG)
    assert one.key == two.key == f"attachments/{one.sha256}"
    with pytest.raises(ValueError):
        att.storage_key("../../etc/passwd")


def test_a_zip_bomb_is_only_ever_its_compressed_bytes() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", bytes(50 * 1024 * 1024))
    bomb = buffer.getvalue()
    assert att.classify("bomb.zip", "application/zip", bomb) == ("document", "application/zip")
    stored = att.Attachment(filename="bomb.zip", content_type="application/zip", kind="document", data=bomb)
    assert len(stored.data) == len(bomb) < 1024 * 1024  # nothing here opens archives; no size but the zip's


def test_limits_are_described_in_plain_words() -> None:
    assert att.describe_limits(att.AttachmentLimits()) == (
        "at most 10 attachments, each at most 10 MB and 25 MB together"
    )
