"""Inbound MIME in, clean facts out; outbound reply headers (pure).

Parsing uses the stdlib ``email`` package with the modern policy. The body becomes text (HTML is converted),
and the instruction is the *new* text only: quoted replies, attribution lines, forwarded/original-message
blocks and signatures are removed. Finding where the quoted part starts uses the multi-language header
patterns of ``mail-parser-reply`` (imported only when a mail is parsed, to keep the handler's cold import lean).

Everything here is written for hostile input: each public function either returns a value or raises one of
our :class:`~workflows.errors.RejectedMailError` subclasses, never anything else (property-tested).
"""

from __future__ import annotations

import codecs
import functools
import re
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parseaddr
from html.parser import HTMLParser
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from workflows import attachments as att
from workflows import replies
from workflows import text as text_shapes
from workflows.attachments import Attachment, AttachmentLimits
from workflows.errors import (
    AttachmentTooLargeError,
    MalformedMailError,
    RejectedMailError,
    TooLargeError,
    TooManyAttachmentsError,
)

MAX_RAW_BYTES = 40 * 1024 * 1024  # SES receives at most 40 MB; larger is rejected before it is parsed
HEADER_PREFIX_BYTES = 64 * 1024  # what intake reads of a too-large mail, to know whom to tell
MAX_INSTRUCTION_CHARS = 20_000
MAX_MIME_PARTS = 300
MAX_MIME_DEPTH = 20
MAX_HTML_CHARS = 2_000_000  # HTML beyond this is not converted: the new text is at the top
MAX_SUBJECT_CHARS = 500
# Reply detection looks at this much text (after quoted lines are gone) and at most this much of each line:
# the header patterns backtrack, and an instruction cannot be longer than MAX_INSTRUCTION_CHARS anyway.
REPLY_SCAN_CHARS = MAX_INSTRUCTION_CHARS + 2_000
REPLY_SCAN_LINE_CHARS = 200
QUOTE_MARK = "\ue000"  # stands where HTML conversion removed a quoted block (a private-use character)

Automatic = Literal["bounce", "auto-reply", "loop"]

# --- the parsed result ------------------------------------------------------------------------------------


class MailHeaders(BaseModel):
    """What the headers say. Values are decoded (RFC 2047), unfolded and reduced to one clean line."""

    model_config = ConfigDict(frozen=True)

    sender: str = ""  # lower-cased addr-spec; "" when there is no usable From
    sender_name: str = ""
    sender_problem: str = ""  # why the From is unusable, when it is
    subject: str = ""
    rfc_message_id: str = ""
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    automatic: Automatic | None = None  # a bounce, auto-reply or loop: never work on it, never answer it
    automatic_detail: str = ""
    dkim_domains: tuple[str, ...] = ()  # d= of every DKIM-Signature (alignment, when DMARC did not pass)

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2]


class ParsedMail(MailHeaders):
    text: str = ""  # the whole body as text (quotes included; see extract_instruction)
    attachments: tuple[Attachment, ...] = ()
    skipped: tuple[str, ...] = ()  # "name: reason" for attachments not stored


# --- MIME -------------------------------------------------------------------------------------------------


def _message(raw: bytes, headers_only: bool = False) -> EmailMessage:
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw, headersonly=headers_only)
    except Exception as exc:  # the parser is lenient; anything it still raises means unusable input
        raise MalformedMailError(f"the message could not be parsed as MIME ({type(exc).__name__})") from exc
    if not isinstance(msg, EmailMessage):
        raise MalformedMailError("the message could not be parsed as MIME")
    return msg


def one_line(value: str, limit: int = 200) -> str:
    """One line, no control characters, bounded: nothing from inbound mail can start a header of its own."""
    return text_shapes.one_line(value, limit)


def _raw_values(msg: Message, name: str) -> list[str]:
    """Header values as they arrived (folded, undecoded), never raising."""
    wanted = name.lower()
    try:
        return [str(v) for k, v in msg.raw_items() if k.lower() == wanted]
    except Exception:
        return []


def _header(msg: Message, name: str, limit: int = 1000) -> str:
    """The decoded value (RFC 2047 words, folding) of the first such header; a value the modern policy cannot
    parse falls back to the raw text rather than failing the whole mail."""
    try:
        value = msg.get(name)
        text = str(value) if value is not None else ""
    except Exception:
        raw = _raw_values(msg, name)
        text = raw[0] if raw else ""
    return one_line(text.encode("utf-8", "replace").decode("utf-8"), limit)


_MSGID_RE = re.compile(r"<[!-;=?-~]{1,250}>")  # printable ASCII without < and >, bounded
_ADDRESS_RE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62}"
)


def is_address(value: str) -> bool:
    return len(value) <= 254 and bool(_ADDRESS_RE.fullmatch(value)) and len(value.partition("@")[0]) <= 64


# Far more than 50 ids of 250 characters each: the cap on ids is message_ids's; this one bounds the decoding.
MAX_ID_HEADER_CHARS = 64 * 1024


def _id_header(msg: Message, name: str) -> str:
    """The first such header's value as text, RFC 2047 encoded words decoded. Python's own ``email`` package
    (and every client or tool built on it) folds a long value into encoded words when a policy with a line
    limit re-serialises it: an SES reply id of about 60 characters arrives as ``=?utf-8?q?=3C...?=``."""
    raw = " ".join(_raw_values(msg, name)[:1])[:MAX_ID_HEADER_CHARS]
    if "=?" not in raw:
        return raw
    try:
        return str(make_header(decode_header(raw)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return raw  # undecodable words: read the ids that are there in plain text


def message_ids(value: str, limit: int = 50) -> tuple[str, ...]:
    return tuple(_MSGID_RE.findall(value))[-limit:]


def _sender(msg: Message) -> tuple[str, str, str]:
    """(address, display name, problem). Exactly one From header with exactly one plain address, or a problem:
    several addresses would make "who is this from" ambiguous, and the allow-list is keyed by it."""
    raw = _raw_values(msg, "From")
    if not raw or not any(v.strip() for v in raw):
        return "", "", "the message has no From address"
    if len(raw) > 1:
        return "", "", "the message has more than one From header"
    try:
        header: Any = msg.get("From")
        addresses = list(getattr(header, "addresses", ()))
        found = [(str(a.addr_spec), str(a.display_name)) for a in addresses]
        invalid = any(type(d).__name__ == "InvalidHeaderDefect" for d in getattr(header, "defects", ()))
    except Exception:
        return "", "", "the From header could not be parsed"
    if len(found) != 1:
        return "", "", "the From header must hold exactly one address"
    address, name = found[0]
    address = address.strip().lower()
    # "alice@example.com <mallory@evil.test>" parses as alice with a defect; the older parser (and other
    # mail software) may read it otherwise. Who sent a mail must not depend on which parser asks.
    if invalid or parseaddr(raw[0])[1].strip().lower() != address:
        return "", "", "the From header is ambiguous"
    if not is_address(address):
        return "", "", "the From address is not a plain email address"
    return address, one_line(name, 100), ""


def _recipients(msg: Message) -> tuple[str, ...]:
    found: list[str] = []
    for name in ("To", "Cc"):
        try:
            headers: Any = msg.get_all(name) or []
            for header in headers:
                found.extend(str(a.addr_spec).lower() for a in getattr(header, "addresses", ()))
        except Exception:
            continue
    return tuple(dict.fromkeys(a for a in found if is_address(a)))[:50]


# --- bounces, auto-replies, loops (RFC 3834 and what real servers send) -------------------------------------

# Subjects alone are weak evidence, so only the forms servers produce: a prefix with a colon, or a phrase no
# person starts an instruction with.
_AUTO_SUBJECT_RE = re.compile(
    r"(?i)^\s*(?:auto(?:matic)?[ -]?(?:reply|response|antwort)|auto|out of (?:the )?office(?: reply| autoreply)?|"
    r"abwesenheitsnotiz|réponse automatique|respuesta automática|risposta automatica|automatisch antwoord|"
    r"autosvar|automaattinen vastaus|автоответ)\s*:"
)
_BOUNCE_SUBJECT_RE = re.compile(
    r"(?i)^\s*(?:undeliverable\s*:|undelivered mail returned to sender|delivery status notification\b|"
    r"mail delivery failed\b|returned mail\s*:|failure notice$|delivery failure\s*:)"
)
_BOUNCE_SENDERS = ("mailer-daemon@", "postmaster@", "mail-daemon@")


def _automatic(msg: Message, sender: str, subject: str, own_domain: str) -> tuple[Automatic, str] | None:
    """Is this mail written by a machine in answer to another mail? Checked before anything else is done
    with it, because answering such mail is how mail loops start."""
    content_type = _header(msg, "Content-Type").lower()
    if content_type.startswith("multipart/report") or "delivery-status" in content_type:
        return "bounce", f"Content-Type: {content_type[:80]}"
    if _raw_values(msg, "X-Failed-Recipients"):
        return "bounce", "X-Failed-Recipients"
    if any(v.strip() in {"<>", ""} for v in _raw_values(msg, "Return-Path")):
        return "bounce", "null Return-Path"
    if sender.startswith(_BOUNCE_SENDERS):
        return "bounce", f"From: {sender}"
    if own_domain and (sender.endswith("@" + own_domain.lower()) or sender.endswith("." + own_domain.lower())):
        return "loop", f"From: {sender}"
    if _raw_values(msg, "X-WebOrdinary-Thread") or _raw_values(msg, "X-WebOrdinary-Notice"):
        return "loop", "X-WebOrdinary header"
    auto_submitted = _header(msg, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return "auto-reply", f"Auto-Submitted: {auto_submitted[:40]}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"):
        value = _header(msg, name).lower()
        if value and value not in {"no", "false", "0"}:
            return "auto-reply", f"{name}: {value[:40]}"
    precedence = _header(msg, "Precedence").lower()
    if precedence in {"bulk", "junk", "list", "auto_reply"}:
        return "auto-reply", f"Precedence: {precedence}"
    for name in ("List-Id", "List-Unsubscribe"):
        if _raw_values(msg, name):
            return "auto-reply", f"{name} (list or bulk mail)"
    if _BOUNCE_SUBJECT_RE.match(subject):
        return "bounce", f"Subject: {subject[:60]}"
    if _AUTO_SUBJECT_RE.match(subject):
        return "auto-reply", f"Subject: {subject[:60]}"
    return None


def _dkim_domains(msg: Message) -> tuple[str, ...]:
    domains = []
    for value in _raw_values(msg, "DKIM-Signature")[:10]:
        match = re.search(r"(?:^|;)\s*d\s*=\s*([A-Za-z0-9.-]{1,253})", value)
        if match:
            domains.append(match.group(1).lower())
    return tuple(domains)


def _headers(msg: Message, own_domain: str) -> dict[str, Any]:
    sender, name, problem = _sender(msg)
    subject = _header(msg, "Subject", MAX_SUBJECT_CHARS)
    automatic = _automatic(msg, sender, subject, own_domain)
    return {
        "sender": sender,
        "sender_name": name,
        "sender_problem": problem,
        "subject": subject,
        "rfc_message_id": next(iter(message_ids(" ".join(_raw_values(msg, "Message-ID")[:1]))), ""),
        "in_reply_to": message_ids(_id_header(msg, "In-Reply-To"), 5),
        "references": message_ids(_id_header(msg, "References")),
        "recipients": _recipients(msg),
        "automatic": automatic[0] if automatic else None,
        "automatic_detail": automatic[1] if automatic else "",
        "dkim_domains": _dkim_domains(msg),
    }


def read_headers(raw: bytes, own_domain: str = "") -> MailHeaders:
    """The headers only: cheap, and works on the first bytes of a mail too large to parse whole."""
    try:
        return MailHeaders.model_validate(_headers(_message(raw, headers_only=True), own_domain))
    except RejectedMailError:
        raise
    except Exception as exc:  # defence in depth (RecursionError included): a parser bug must not crash intake
        raise MalformedMailError(f"the message headers could not be read ({type(exc).__name__})") from exc


# --- body text --------------------------------------------------------------------------------------------

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


# --- HTML to text -----------------------------------------------------------------------------------------

_SKIP_TAGS = {"script", "style", "head", "title", "template", "noscript", "xml", "object", "iframe", "svg", "math"}
_VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "wbr"}
_BLOCK_TAGS = {
    "p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "pre", "hr",
    "section", "article", "header", "footer", "dd", "dt", "dl", "address", "center", "form", "fieldset",
    "figure", "figcaption", "main", "nav", "aside", "tbody", "thead", "caption",
}  # fmt: skip
# Containers that hold the quoted conversation (Gmail, Thunderbird, Yahoo, Proton, Zoho, Apple).
_QUOTE_CLASSES = ("gmail_quote", "gmail_attr", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote", "zmail_extra")
# Markers after which everything is the quoted conversation (Outlook, Outlook.com/Hotmail, Zimbra).
_REST_IDS = {"divrplyfwdmsg", "x_divrplyfwdmsg", "appendonsend", "x_appendonsend", "stopspelling", "zwchr"}
_OUTLOOK_SEPARATOR_STYLE = re.compile(r"border:\s*none;\s*border-top:\s*solid", re.IGNORECASE)


class _TextExtractor(HTMLParser):
    def __init__(self, mark_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.mark_quotes = mark_quotes
        self.out: list[str] = []
        self.skip_tag = ""
        self.skip_depth = 0
        self.pre = 0
        self.stopped = False
        self.link: tuple[str, int] | None = None  # (href, position in out where its text starts)

    def _quote(self) -> None:
        self.out.append(f"\n{QUOTE_MARK}\n" if self.mark_quotes else _SOFT)

    def _is_quote(self, tag: str, attrs: dict[str, str]) -> bool:
        classes = attrs.get("class", "").lower()
        return tag == "blockquote" or any(c in classes for c in _QUOTE_CLASSES)

    def _rest_is_quote(self, tag: str, attrs: dict[str, str]) -> bool:
        if attrs.get("id", "").lower() in _REST_IDS or "outlookmessageheader" in attrs.get("class", "").lower():
            return True
        return tag == "div" and bool(_OUTLOOK_SEPARATOR_STYLE.search(attrs.get("style", "")))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        if self.skip_depth:
            if tag == self.skip_tag and tag not in _VOID_TAGS:
                self.skip_depth += 1
            return
        attributes = {k.lower(): v or "" for k, v in attrs}
        if self._rest_is_quote(tag, attributes):
            self._quote()
            self.stopped = True
            return
        if tag in _SKIP_TAGS or self._is_quote(tag, attributes):
            if self._is_quote(tag, attributes):
                self._quote()
            if tag not in _VOID_TAGS:
                self.skip_tag, self.skip_depth = tag, 1
            return
        if tag == "pre":
            self.pre += 1
        if tag == "li":
            self.out.append(_SOFT + "- ")
        elif tag == "hr":
            self.out.append(_SOFT + "_" * 32 + _SOFT)
        elif tag == "br":
            self.out.append("\n")
        elif tag in _BLOCK_TAGS:
            self.out.append(_PARAGRAPH if tag == "p" else _SOFT)
        elif tag in {"td", "th"}:
            self.out.append(" ")
        elif tag == "a":
            href = attributes.get("href", "")
            self.link = (href, len(self.out)) if re.match(r"(?i)(?:https?|mailto):", href) else None

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.stopped:
            return
        if self.skip_depth:
            if tag == self.skip_tag:
                self.skip_depth -= 1
            return
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _BLOCK_TAGS and tag != "br":
            self.out.append(_PARAGRAPH if tag == "p" else _SOFT)
        elif tag == "a" and self.link is not None:
            href, start = self.link
            href = href[7:] if href.lower().startswith("mailto:") else href
            text = "".join(self.out[start:]).strip()
            if href.rstrip("/") != text.rstrip("/") and href not in text:
                self.out.append(f" ({href})")
            self.link = None

    def handle_data(self, data: str) -> None:
        if self.stopped or self.skip_depth:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        joined = "".join(self.out).replace("\xa0", " ")
        joined = re.sub(r"[ \t]*[\x01\x02\n][\x01\x02\s]*", _breaks, joined)
        lines = [line.strip() for line in joined.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


# Block boundaries are "soft" (several in a row are one line break, as a browser renders nested divs), a
# paragraph is a blank line, and <br> is a hard break: "<div>Hi</div><div><br></div><div>Bye</div>" has one
# empty line between, as on screen.
_SOFT = "\x01"
_PARAGRAPH = "\x02"


def _breaks(match: re.Match[str]) -> str:
    run = match.group(0).strip(" \t")
    hard = run.count("\n")
    marker = ("\x01", "\x02")
    count = hard + (1 if hard and run[0] in marker and run[-1] in marker else 0)
    if not hard:
        count = 1
    if "\x02" in run:
        count = max(count, 2)
    return "\n" * min(count, 2)


def _html_to_text(markup: str, mark_quotes: bool) -> str:
    markup = markup[:MAX_HTML_CHARS]
    extractor = _TextExtractor(mark_quotes)
    try:
        extractor.feed(markup)
        extractor.close()
        return extractor.text()
    except Exception:  # HTMLParser still asserts on some broken markup: fall back to dropping every tag
        import html

        text = re.sub(r"(?is)<(script|style|head)\b.*?</\1\s*>", " ", markup)
        text = re.sub(r"(?i)<br\s*/?>|</p\s*>|</div\s*>|</li\s*>|</tr\s*>", "\n", text)
        return html.unescape(re.sub(r"<[^>]{0,2000}>", "", text)).strip()


def html_to_text(markup: str) -> str:
    """Readable text from an HTML mail body: block elements become lines, links keep their address, quoted
    blocks (``<blockquote>``, Gmail/Thunderbird/Yahoo quote containers, Outlook's reply header) are dropped."""
    return _html_to_text(markup, mark_quotes=False)


# --- the new text of a reply ------------------------------------------------------------------------------

_QUOTED_LINE = re.compile(r"^ {0,3}>")
_ATTRIBUTION_START = re.compile(
    r"(?i)^(?:(?:on|am|le|el|il|op|em|den|dne|på|w dniu|il giorno)\s|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|"
    r"\d{1,2} \w+ \d{2,4}|(?:mon|tue|wed|thu|fri|sat|sun)\w*,?\s)"
)
_ATTRIBUTION_VERB = re.compile(
    r"(?i)(?:wrote|writes|schrieb|a écrit|escribió|ha scritto|scrisse|schreef|skrev|napisał|napsal|kirjoitti|"
    r"írta|yazdı|escreveu|написал|написала|пишет|寫道|写道|のメッセージ|님이 작성)"  # noqa: RUF001
)
_SEPARATOR_CUT = re.compile(
    r"(?i)^(?:-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|исходное сообщение|původní zpráva|originalmeddelande|"
    r"wiadomość oryginalna)\s*-{2,}|_{20,}|={20,})$"
)
# A forwarded message is material the user is handing over ("put this on the news page"), not an earlier turn
# of our conversation: it is kept, below the user's own text, without its header block.
_FORWARD_SEPARATOR = re.compile(
    r"(?i)^(?:-{2,}\s*(?:forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|"
    r"messaggio inoltrato|doorgestuurd bericht|пересылаемое сообщение|videresendt melding|"
    r"vidarebefordrat meddelande)\s*-{2,}|begin forwarded message:|-{2,}\s*forwarded by .{1,80}-{2,})$"
)
FORWARD_MARKER = "---------- Forwarded message ----------"
_SEPARATOR_LINE = re.compile(r"^[-_=*~#. ]{3,}$")
_SIGNATURE_DELIMITER = re.compile(r"^(?:--|- -|\u2014|\u2013)$")  # "-- " (trailing space gone), em/en dash
_MOBILE_SIGNATURE = re.compile(
    r"(?i)^(?:sent (?:from|with|via|using)|get outlook for|von meinem|gesendet von|envoyé (?:de|depuis) mon|"
    r"enviado (?:desde|do|de) m[ie]u?|inviato da|verzonden (?:vanaf|met) mijn|skickat från min|отправлено с|"  # noqa: RUF001
    r"wysłane z)\b[^,;]{0,80}$"
)
_VALEDICTION = re.compile(
    r"(?i)^(?:thanks|thank you|many thanks|thanks again|thanks so much|thx|ty|cheers|best|best wishes|"
    r"best regards|kind regards|warm regards|warmly|regards|all the best|yours|sincerely|yours sincerely|"
    r"yours truly|br|mfg|mit freundlichen grüßen|viele grüße|liebe grüße|grüße|gruß|cordialement|"
    r"bien à vous|saludos|un saludo|cordiali saluti|saluti|met vriendelijke groet|groeten|"
    r"med vänliga hälsningar|hälsningar|с уважением|спасибо)[\s,.!]*$"  # noqa: RUF001
)
_DASH_NAME = re.compile(r"^-[A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,2}$")


def _looks_like_attribution(block: list[str]) -> bool:
    """Ends with a colon and names a writer: an address, a "wrote" (many languages), or a time and a year."""
    text = " ".join(line.strip() for line in block)
    if len(text) > 300 or not text.rstrip().endswith(":"):
        return False
    dated = re.search(r"\d{1,2}:\d{2}", text) and re.search(r"\b(?:19|20)\d{2}\b", text)
    return bool("@" in text or _ATTRIBUTION_VERB.search(text) or dated)


def _starts_attribution(line: str) -> bool:
    return bool(_ATTRIBUTION_START.match(line.strip().lstrip("-*> ")))


def _drop_attribution(kept: list[str]) -> None:
    """Remove the "On <date>, <person> wrote:" lines (any language, up to three lines) just above a quote."""
    end = len(kept)
    while end and not kept[end - 1].strip():
        end -= 1
    start = end
    while start > 0 and end - start < 3 and kept[start - 1].strip() and kept[start - 1] != QUOTE_MARK:
        start -= 1
    # Prefer the block that starts like an attribution ("On …", a date); else the shortest that ends like one.
    for first in range(start, end):
        if _starts_attribution(kept[first]) and _looks_like_attribution(kept[first:end]):
            del kept[first:end]
            return
    for first in range(end - 1, start - 1, -1):
        if _looks_like_attribution(kept[first:end]):
            del kept[first:end]
            return


def _without_quotes(lines: list[str]) -> list[str]:
    kept: list[str] = []
    for line in lines:
        if line == QUOTE_MARK or _QUOTED_LINE.match(line):
            if not kept or kept[-1] != QUOTE_MARK:
                _drop_attribution(kept)
                kept.append(QUOTE_MARK)
            continue
        kept.append(line)
    return kept


# Outlook-style header blocks in languages mail-parser-reply does not know (Russian, Scandinavian, …): a
# "From:" line followed within three lines by another header label.
_FROM_LABEL = re.compile(r"(?i)^[*\s]*(?:from|от|von|de|da|van|od|fra|från|lähettäjä|feladó|kimden)\s*:\*?\s")
_HEADER_LABEL = re.compile(
    r"(?i)^[*\s]*(?:sent|date|to|subject|cc|отправлено|дата|кому|тема|копия|gesendet|datum|an|betreff|envoyé|à|"
    r"objet|enviado|fecha|para|asunto|inviato|oggetto|verzonden|aan|onderwerp|wysłano|do|temat|odesláno|komu|"
    r"předmět|sendt|til|emne|skickat|till|ämne|lähetetty|vastaanottaja|aihe)\s*:"
)
_LABEL_LINE = re.compile(r"^[*\s>]*[^\W\d][\w -]{0,20}:", re.UNICODE)
_WHEN_OR_WHAT_LABEL = re.compile(
    r"(?i)^[*\s>]*(?:sent|date|subject|отправлено|дата|тема|gesendet|datum|betreff|envoyé|objet|enviado|fecha|"
    r"asunto|inviato|data|oggetto|verzonden|onderwerp|wysłano|temat|odesláno|předmět|sendt|emne|skickat|ämne|"
    r"lähetetty|aihe)\s*:"
)


def _plausible_header(block: str) -> bool:
    """Header patterns take any two "From:/To:"-like lines for a quoted message's header; "From: 9am / To: 5pm"
    in an instruction is not one. A real one has an address, a "wrote", or a date or subject line among
    its header lines."""
    if "@" in block or _ATTRIBUTION_VERB.search(block) or "original" in block.lower():
        return True
    lines = block.split("\n")
    return sum(1 for line in lines if _LABEL_LINE.match(line)) >= 2 and any(_WHEN_OR_WHAT_LABEL.match(x) for x in lines)


@functools.cache
def _reply_header_pattern() -> re.Pattern[str]:
    """The quote-header patterns of mail-parser-reply for every language it knows ("On … wrote:", "Am …
    schrieb:", Outlook's "From:/Sent:/To:" block in each language, "-----Original Message-----")."""
    from mailparser_reply.constants import MAIL_LANGUAGES
    from mailparser_reply.parser import EmailMessage as ReplyMessage

    pattern: re.Pattern[str] = ReplyMessage(text="", languages=list(MAIL_LANGUAGES)).HEADER_REGEX
    return pattern


def _first_header_line(lines: list[str]) -> int | None:
    """Index of the first line where a quoted message's header starts, if any."""
    # Bounded copy: line-aligned with ``lines``, each line capped (the patterns backtrack within a line).
    capped = "\n".join(line[:REPLY_SCAN_LINE_CHARS] for line in lines)
    found: int | None = None
    position = 0
    pattern = _reply_header_pattern()
    while (match := pattern.search(capped, position)) is not None:
        block = match.group(0)
        if _plausible_header(block):
            start = match.start() + (len(block) - len(block.lstrip()))
            found = capped.count("\n", 0, start)
            break
        position = max(match.end(), position + 1)
    for index, line in enumerate(lines[: found if found is not None else len(lines)]):
        following = lines[index + 1 : index + 4]
        header_block = _FROM_LABEL.match(line) and any(_HEADER_LABEL.match(n) for n in following)
        if header_block and _plausible_header("\n".join([line, *following])):
            return index
        # "--- On Wed, 4/4/12, bob@example.com wrote:" (Yahoo) and other attributions the patterns miss; a
        # "wrote" or an address is required, so "On Monday at 10:30 change the banner to:" stays.
        if _starts_attribution(line):
            for size in (1, 2, 3):
                candidate = lines[index : index + size]
                joined = " ".join(candidate)
                if ("@" in joined or _ATTRIBUTION_VERB.search(joined)) and _looks_like_attribution(candidate):
                    return index
    return found


def _is_tail(lines: list[str], index: int, max_lines: int = 5) -> bool:
    """Only short lines follow: what a signature block looks like."""
    rest = [line for line in lines[index + 1 :] if line.strip()]
    return len(rest) <= max_lines and all(len(line) <= 80 for line in rest)


def _cut_signature(lines: list[str]) -> list[str]:
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _SIGNATURE_DELIMITER.match(stripped) and index > 0:
            return lines[:index]
        words = len(stripped.split())
        signature = (_MOBILE_SIGNATURE.match(stripped) and words <= 10) or _VALEDICTION.match(stripped)
        if signature and _is_tail(lines, index) and any(item.strip() for item in lines[:index]):
            return lines[:index]
        if _DASH_NAME.match(stripped) and _is_tail(lines, index, 0) and index > 0:
            return lines[:index]
    return lines


def _until_quoted_message(lines: list[str]) -> list[str]:
    """The lines above the first separator or reply header: where the quoted conversation starts."""
    for index, line in enumerate(lines):
        if _SEPARATOR_CUT.match(line.strip()):
            lines = lines[:index]
            break
    header = _first_header_line(lines)
    return lines[:header] if header is not None else lines


def _tidy(lines: list[str]) -> str:
    lines = [line.replace(QUOTE_MARK, "") for line in lines if line != QUOTE_MARK]
    while lines and (not lines[-1].strip() or _SEPARATOR_LINE.match(lines[-1].strip())):
        lines.pop()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _forwarded_body(lines: list[str]) -> str:
    """A forwarded message without its From/Date/Subject/To block, and without what *it* quotes."""
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    while index < len(lines) and (_LABEL_LINE.match(lines[index]) or (lines[index][:1].isspace() and index)):
        index += 1
    return _tidy(_until_quoted_message(lines[index:]))


def extract_instruction(text: str) -> str:
    """The new text of a mail: without quoted lines and their attribution, without the quoted message below a
    reply header (every client's style, many languages), without separators and signatures; a forwarded
    message is kept below it. May be longer than MAX_INSTRUCTION_CHARS (intake rejects that with an
    explanation rather than truncating)."""
    # Quoted lines do not count towards the bound below, so look further than it, but not at megabytes.
    text = text[: 20 * REPLY_SCAN_CHARS]
    text = re.sub(r"[\u200b\u200c\u200d\u2060\ufeff]", "", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.replace("\xa0", " ")
    lines = [line.rstrip() for line in _without_quotes(text.split("\n"))]
    # Bound the work: an instruction is at most MAX_INSTRUCTION_CHARS; past that, more text changes nothing.
    total, bounded = 0, []
    for line in lines:
        if total + len(line) >= REPLY_SCAN_CHARS:
            bounded.append(line[: REPLY_SCAN_CHARS - total])
            break
        total += len(line) + 1
        bounded.append(line)
    forward = next((i for i, line in enumerate(bounded) if _FORWARD_SEPARATOR.match(line.strip())), None)
    own = _until_quoted_message(bounded if forward is None else bounded[:forward])
    new_text = _tidy(_cut_signature([line for line in own if line != QUOTE_MARK]))
    if forward is None or len(own) < forward:
        return new_text  # no forward, or it sits inside the quoted conversation
    forwarded = _forwarded_body(bounded[forward + 1 :])
    return f"{new_text}\n\n{FORWARD_MARKER}\n{forwarded}".strip() if forwarded else new_text


# --- outbound ---------------------------------------------------------------------------------------------

SUBJECT_TAG_RE = re.compile(r"\[wo:([a-z0-9]{8})\]", re.IGNORECASE)
_REPLY_PREFIX_RE = re.compile(r"(?i)^\s*(?:(?:re|aw|sv|vs|antw|fwd?|wg|tr|rv|enc)\s*(?:\[\d+\])?\s*:\s*)+")


def subject_tag(subject: str) -> str | None:
    """The thread id in a subject's ``[wo:xxxxxxxx]`` tag (the caller checks it is a thread of this project)."""
    match = SUBJECT_TAG_RE.search(subject)
    return match.group(1).lower() if match else None


def is_reply_subject(subject: str) -> bool:
    return bool(_REPLY_PREFIX_RE.match(subject))


def bare_subject(subject: str) -> str:
    """Without Re:/Fwd: prefixes and our tag: what the user titled the message."""
    return one_line(_REPLY_PREFIX_RE.sub("", SUBJECT_TAG_RE.sub("", subject)), MAX_SUBJECT_CHARS)


def reply_subject(subject: str, thread_id: str | None = None) -> str:
    """``Re: {subject}``, tagged ``[wo:{thread}]`` so a reply whose client dropped every other header still
    finds its thread (the thread id's alphabet cannot break out of the tag)."""
    base = one_line(SUBJECT_TAG_RE.sub("", subject), 200) or "Your website change"
    base = base if re.match(r"(?i)^re:", base) else f"Re: {base}"
    if thread_id is None:
        return base
    if not re.fullmatch(r"[a-z0-9]{8}", thread_id):
        raise ValueError(f"not a thread id: {thread_id!r}")
    return f"{base} [wo:{thread_id}]"


def reply_envelope(
    *,
    from_address: str,
    to: str,
    reply_to: str,
    subject: str,
    in_reply_to: str,
    references: tuple[str, ...],
    fallback_id: str,
    thread_id: str | None = None,
) -> dict[str, str]:
    """The reply's addressing and threading headers. Message ids are the only values copied verbatim, so
    they are re-validated; everything else is reduced to one clean line. When the inbound mail had no
    Message-ID, ``fallback_id`` stands in so In-Reply-To/References are never empty (SES rejects empty
    header values)."""
    parent = in_reply_to if _MSGID_RE.fullmatch(in_reply_to) else fallback_id
    chain = [m for m in references if _MSGID_RE.fullmatch(m)] + [parent]
    return {
        "fromAddress": one_line(from_address),
        "to": one_line(to),
        "replyTo": one_line(reply_to),
        "subject": reply_subject(subject, thread_id),
        "inReplyTo": parent,
        "references": " ".join(list(dict.fromkeys(chain))[-20:]),
    }
