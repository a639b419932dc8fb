"""The body of a mail and :func:`parse`, which reads a whole mail (pure).

Body text (charsets, format=flowed, the best alternative of each multipart, HTML converted to text), the
bounded walk over the MIME tree, the attachments (decoded, classified, named, within limits), and
:func:`parse`, which puts headers, text and attachments together into a :class:`ParsedMail`.
"""

from __future__ import annotations

import codecs
from email.message import Message

from workflows import attachments as att
from workflows import replies
from workflows.attachments import Attachment, AttachmentLimits
from workflows.errors import (
    AttachmentTooLargeError,
    MalformedMailError,
    RejectedMailError,
    TooLargeError,
    TooManyAttachmentsError,
)
from workflows.mail.headers import ParsedMail, _headers, _message, one_line
from workflows.mail.html_text import _html_to_text
from workflows.mail.limits import MAX_MIME_DEPTH, MAX_MIME_PARTS, MAX_RAW_BYTES

_CHARSET_ALIASES = {
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-sjis": "shift_jis",
    "windows-874": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ansi_x3.4-1968": "ascii",
    "us-ascii": "ascii",
    "default": "ascii",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
}


def _decode_bytes(payload: bytes, charset: str) -> str:
    """Declared charset first, then UTF-8, then Windows-1252 (never fails): mail clients lie about charsets,
    and an unknown one must not lose the text."""
    name = _CHARSET_ALIASES.get(charset.strip().strip("\"'").lower(), charset.strip().strip("\"'").lower())
    for candidate in (name, "utf-8"):
        try:
            codecs.lookup(candidate)
            return payload.decode(candidate)
        except (LookupError, UnicodeError, ValueError, TypeError):
            continue
    return payload.decode("cp1252", errors="replace")


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: lines ending in a space continue on the next line (same quote depth)."""
    out: list[str] = []
    buffer: str | None = None
    buffer_depth = 0
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delsp:
            content = content[:-1]
        if buffer is not None and depth != buffer_depth:
            out.append(">" * buffer_depth + (" " if buffer_depth else "") + buffer)
            buffer = None
        buffer = content if buffer is None else buffer + content
        buffer_depth = depth
        if not flowed:
            out.append(">" * depth + (" " if depth else "") + buffer)
            buffer = None
    if buffer is not None:
        out.append(">" * buffer_depth + (" " if buffer_depth else "") + buffer)
    return "\n".join(out)


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    return str(value) if isinstance(value, str) else ""


def _payload(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return b""
    return payload if isinstance(payload, bytes) else b""


def _text_of(part: Message) -> str:
    text = _decode_bytes(_payload(part), _param(part, "charset") or "us-ascii")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _param(part, "format").lower() == "flowed":
        text = _unflow(text, _param(part, "delsp").lower() == "yes")
    return text


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _filename(part: Message) -> str:
    try:
        return str(part.get_filename() or "")
    except Exception:
        return ""


_NOT_ATTACHMENTS = {
    "application/pgp-signature",
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "message/delivery-status",
    "message/disposition-notification",
    "text/rfc822-headers",
}


def _is_attachment(part: Message) -> bool:
    content_type = _content_type(part)
    if content_type in _NOT_ATTACHMENTS:
        return False  # signatures and report parts belong to the mail, not to the user's files
    if _disposition(part) == "attachment":
        return True
    if content_type in {"text/plain", "text/html"}:
        return bool(_filename(part)) and _disposition(part) != "inline"
    if content_type == "message/rfc822":
        return True
    return not content_type.startswith("multipart/")


def _check_multipart(part: Message) -> None:
    # Without a (matching) boundary the parser keeps a multipart as one opaque string: the parts and the
    # text in them are lost, so the mail cannot be read as the sender meant it.
    if _content_type(part).startswith("multipart/") and not part.is_multipart():
        raise MalformedMailError("a multipart section of the message has no readable parts (missing boundary)")


class _Walker:
    """One pass over the MIME tree with bounded depth and part count (nesting bombs are malformed mail)."""

    def __init__(self) -> None:
        self.parts = 0
        self.attachments: list[Message] = []

    def _count(self, depth: int) -> None:
        self.parts += 1
        if depth > MAX_MIME_DEPTH:
            raise MalformedMailError(f"the message nests MIME parts more than {MAX_MIME_DEPTH} deep")
        if self.parts > MAX_MIME_PARTS:
            raise MalformedMailError(f"the message has more than {MAX_MIME_PARTS} MIME parts")

    def collect(self, part: Message, depth: int = 0) -> None:
        """Every attachment, wherever it sits (an image pasted into an HTML alternative is one too)."""
        self._count(depth)
        _check_multipart(part)
        content_type = _content_type(part)
        if content_type == "message/rfc822" or not part.is_multipart():
            # A top-level text part is the body whatever its disposition says.
            if _is_attachment(part) and not (depth == 0 and content_type.startswith("text/")):
                self.attachments.append(part)
            return
        payload = part.get_payload()
        if not isinstance(payload, list):
            raise MalformedMailError("a multipart section of the message has no readable parts")
        for child in payload:
            if isinstance(child, Message):
                self.collect(child, depth + 1)

    def text(self, part: Message, depth: int = 0) -> str:
        """The body as text: the best alternative of each multipart/alternative, the inline text parts of a
        multipart/mixed in order (iOS splits text around pasted images), the root of a multipart/related."""
        content_type = _content_type(part)
        if content_type == "message/rfc822" or (depth > 0 and _is_attachment(part)):
            return ""
        if not part.is_multipart():
            if content_type == "text/html":
                return _html_to_text(_text_of(part), mark_quotes=True)
            if content_type == "text/plain" or (depth == 0 and content_type.startswith("text/")):
                return _text_of(part)
            return ""
        payload = part.get_payload()
        children = [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
        if not children:
            return ""
        if depth >= MAX_MIME_DEPTH:
            raise MalformedMailError(f"the message nests MIME parts more than {MAX_MIME_DEPTH} deep")
        if content_type == "multipart/alternative":
            # Plain text when it has any (clients write it; HTML is the fallback), else HTML, else the rest.
            alternatives = {_content_type(c): self.text(c, depth + 1) for c in reversed(children)}
            for preferred in ("text/plain", "text/html"):
                if alternatives.get(preferred, "").strip():
                    return alternatives[preferred]
            return next((t for t in alternatives.values() if t.strip()), "")
        if content_type in {"multipart/related", "multipart/signed"}:
            return self.text(children[0], depth + 1)
        texts = [self.text(c, depth + 1) for c in children]
        return "\n\n".join(t.strip("\n") for t in texts if t.strip())


def _attachments(parts: list[Message], limits: AttachmentLimits) -> tuple[tuple[Attachment, ...], tuple[str, ...]]:
    if len(parts) > limits.max_count:
        raise TooManyAttachmentsError(replies.too_many_attachments(len(parts), att.describe_limits(limits)))
    decoded: list[tuple[Message, bytes]] = []
    total = 0
    for part in parts:
        if _content_type(part) == "message/rfc822":
            inner = part.get_payload()
            try:
                data = inner[0].as_bytes() if isinstance(inner, list) and isinstance(inner[0], Message) else b""
            except Exception:
                data = b""
        else:
            data = _payload(part)
        if len(data) > limits.max_bytes:
            name = one_line(_filename(part), 100) or "an attachment"
            raise AttachmentTooLargeError(replies.attachment_too_large(name, len(data), att.describe_limits(limits)))
        total += len(data)
        decoded.append((part, data))
    if total > limits.max_total_bytes:
        raise AttachmentTooLargeError(replies.attachments_too_large(total, att.describe_limits(limits)))
    kept: list[tuple[str, str, att.Kind, bytes]] = []
    skipped: list[str] = []
    for index, (part, data) in enumerate(decoded, start=1):
        original = _filename(part)
        kind, content_type = att.classify(original, _content_type(part), data)
        name = att.sanitise_filename(original, content_type, index)
        if kind == "executable":
            skipped.append(f"{name}: programs are not accepted")
            continue
        kept.append((name, content_type, kind, data))
    names = att.unique_names([k[0] for k in kept])
    stored = tuple(
        Attachment(filename=n, content_type=t, kind="image" if k == "image" else "document", data=d)
        for n, (_, t, k, d) in zip(names, kept, strict=True)
    )
    return stored, tuple(skipped)


def parse(raw: bytes, limits: AttachmentLimits | None = None, own_domain: str = "") -> ParsedMail:
    """The whole mail: headers, body text and attachments (decoded, classified, named, within limits)."""
    if len(raw) > MAX_RAW_BYTES:
        raise TooLargeError(f"The email is larger than {MAX_RAW_BYTES // 1024 // 1024} MB.")
    try:
        msg = _message(raw)
        facts = _headers(msg, own_domain)
        walker = _Walker()
        walker.collect(msg)
        text = _Walker().text(msg)
        stored, skipped = _attachments(walker.attachments, limits or AttachmentLimits())
    except RejectedMailError:
        raise
    except Exception as exc:  # defence in depth (RecursionError included): a parser bug must not crash intake
        raise MalformedMailError(f"the message could not be read ({type(exc).__name__})") from exc
    return ParsedMail.model_validate({**facts, "text": text, "attachments": stored, "skipped": skipped})
