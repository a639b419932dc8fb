"""The parsed result and everything read from a mail's headers (pure).

:class:`MailHeaders` and :class:`ParsedMail` (the facts a mail yields), the MIME parser entry point, the
header helpers (RFC 2047 decoding, one-line values, message ids, the sender and recipients), the detection
of bounces, auto-replies and mail loops (RFC 3834 and what real servers send), and :func:`read_headers`,
which reads the headers alone.
"""

from __future__ import annotations

import re
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parseaddr
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from workflows import text as text_shapes
from workflows.attachments import Attachment
from workflows.errors import MalformedMailError, RejectedMailError
from workflows.mail.limits import MAX_SUBJECT_CHARS

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
