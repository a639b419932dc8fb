"""Attachments of inbound mail (pure): safe file names, what a file really is, limits, where it is stored.

Attachments are stored content-addressed in the mail bucket (``attachments/{sha256}``), so the same file sent
twice is stored once and a redelivered mail writes the same objects again. Nothing here ever opens an archive:
a zip (or a zip bomb) is stored as the bytes it arrived as and the worker copies those bytes, never their
contents.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict

from workflows import replies

ATTACHMENT_PREFIX = "attachments/"
MAX_FILENAME_CHARS = 100

Kind = Literal["image", "document", "executable"]


class AttachmentLimits(BaseModel):
    """Per message. Over a limit, the whole mail is rejected with a reply that names the limit (dropping some
    attachments silently would run the instruction on half of what the user sent)."""

    model_config = ConfigDict(frozen=True)

    max_count: int = 10
    max_bytes: int = 10 * 1024 * 1024
    max_total_bytes: int = 25 * 1024 * 1024


class Attachment(BaseModel):
    """One attachment as parsed: the decoded bytes plus what intake decided about them."""

    model_config = ConfigDict(frozen=True)

    filename: str
    content_type: str
    kind: Kind
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def key(self) -> str:
        return storage_key(self.sha256)


def storage_key(sha256: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"{ATTACHMENT_PREFIX}{sha256}"


# --- what a file is: its first bytes decide, its name and declared type only break ties ----------------------

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "application/x-ole-storage"),
    (b"MZ", 0, "application/x-msdownload"),
    (b"\x7fELF", 0, "application/x-executable"),
    (b"\xcf\xfa\xed\xfe", 0, "application/x-mach-binary"),
    (b"\xce\xfa\xed\xfe", 0, "application/x-mach-binary"),
    (b"\xca\xfe\xba\xbe", 0, "application/x-mach-binary"),
)
_EXECUTABLE_TYPES = {"application/x-msdownload", "application/x-executable", "application/x-mach-binary"}
# Windows runs these by name alone; a site never needs them. Scripts a site may use (.js, .sh) are documents.
_EXECUTABLE_EXTENSIONS = {
    ".exe", ".dll", ".scr", ".msi", ".com", ".bat", ".cmd", ".vbs", ".vbe", ".ps1", ".pif", ".cpl", ".lnk",
    ".hta", ".jse", ".wsf", ".msc", ".reg",
}  # fmt: skip
_IMAGE_EXTENSIONS = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg", ".jpe"),
    "image/gif": (".gif",),
    "image/bmp": (".bmp",),
    "image/tiff": (".tif", ".tiff"),
    "image/webp": (".webp",),
    "image/heic": (".heic", ".heif"),
    "image/avif": (".avif",),
    "image/svg+xml": (".svg",),
}
_EXTENSION_FOR_TYPE = {
    **{t: exts[0] for t, exts in _IMAGE_EXTENSIONS.items()},
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/csv": ".csv",
    "text/calendar": ".ics",
    "text/vcard": ".vcf",
    "text/x-vcard": ".vcf",
    "message/rfc822": ".eml",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/json": ".json",
}
_CONTENT_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def sniff(data: bytes) -> str | None:
    """The content type the first bytes prove, if any."""
    for magic, offset, content_type in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in {b"heic", b"heix", b"mif1", b"msf1", b"hevc"}:
        return "image/heic"
    if data[4:8] == b"ftyp" and data[8:12] in {b"avif", b"avis"}:
        return "image/avif"
    head = data[:1024].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in head:
        return "image/svg+xml"
    return None


def _extension(filename: str) -> str:
    stem, dot, ext = filename.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


def classify(filename: str, declared_type: str, data: bytes) -> tuple[Kind, str]:
    """(kind, content type). The bytes win over the declared type: a PNG called ``x.pdf`` is an image, and an
    ``MZ`` executable declared ``image/png`` is an executable."""
    sniffed = sniff(data)
    declared = declared_type.strip().lower()
    declared = declared if _CONTENT_TYPE_RE.fullmatch(declared) else "application/octet-stream"
    if sniffed in _EXECUTABLE_TYPES or _extension(filename) in _EXECUTABLE_EXTENSIONS:
        return "executable", sniffed or declared
    if sniffed is not None and sniffed.startswith("image/"):
        return "image", sniffed
    if sniffed is not None:
        # A docx is a zip: keep the more specific declared type, unless it claims to be something else entirely.
        vague = declared == "application/octet-stream" or declared.startswith(("image/", "text/"))
        return "document", sniffed if vague else declared
    if declared.startswith("image/"):
        # Declared an image but the bytes prove nothing: keep it as an opaque document.
        return "document", "application/octet-stream"
    return "document", declared


# --- names -----------------------------------------------------------------------------------------------

_WINDOWS_RESERVED = re.compile(r"(?i)^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$")
_UNSAFE_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')


def sanitise_filename(name: str, content_type: str, index: int) -> str:
    """One path component the worker can write anywhere: no directories (``../``, ``C:\\``), no control or
    bidi-override characters (``gnp.exe`` spoofing), no hidden files, at most 100 characters, and an
    extension that matches what the bytes are when they are an image."""
    text = unicodedata.normalize("NFKC", name or "")
    # Only the last component of any path the sender wrote, with either separator.
    text = re.split(r"[/\\]", text)[-1]
    # Control characters (Cc: tabs, newlines, NUL) become spaces; format characters (Cf: bidi overrides,
    # zero-width), unassigned, surrogate and private-use characters are dropped.
    text = "".join(
        " " if unicodedata.category(ch) == "Cc" else ch
        for ch in text
        if unicodedata.category(ch) not in {"Cf", "Cn", "Cs", "Co"}
    )
    text = _UNSAFE_CHARS.sub("_", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r" +\.", ".", text).strip().strip(".").strip()
    if _WINDOWS_RESERVED.match(text):
        text = f"_{text}"
    wanted = _EXTENSION_FOR_TYPE.get(content_type, "")
    if not text or not text.strip("_ "):
        text = f"attachment-{index}{wanted}"
    if content_type in _IMAGE_EXTENSIONS and _extension(text) not in _IMAGE_EXTENSIONS[content_type]:
        text = f"{text}{wanted}"
    if len(text) > MAX_FILENAME_CHARS:
        ext = _extension(text)[:16]
        text = text[: MAX_FILENAME_CHARS - len(ext)].rstrip(". ") + ext
    return text


def unique_names(names: list[str]) -> list[str]:
    """``photo.jpg, photo.jpg`` -> ``photo.jpg, photo-2.jpg`` (case-insensitively, for case-folding disks)."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in seen:
            n += 1
            stem, dot, ext = name.rpartition(".")
            candidate = f"{stem}-{n}.{ext}" if dot and stem else f"{name}-{n}"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def describe_limits(limits: AttachmentLimits) -> str:
    return replies.attachment_limits(limits.max_count, limits.max_bytes, limits.max_total_bytes)
