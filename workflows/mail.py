"""Inbound MIME parsing and outbound reply headers (pure, stdlib ``email`` with the modern policy)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from workflows.errors import MalformedMailError

MAX_INSTRUCTION_CHARS = 20_000
_QUOTE_HEADER_RES = (
    re.compile(r"^\s*On .{0,300}wrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),
    re.compile(r"^\s*From:\s.+$"),
)
_SIGNATURE_RES = (
    re.compile(r"^-- ?$"),
    re.compile(r"^\s*Sent from my \w+", re.IGNORECASE),
)
_MSGID_RE = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class ParsedMail:
    sender: str
    sender_name: str
    subject: str
    rfc_message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    recipients: tuple[str, ...] = field(default_factory=tuple)


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header the policy cannot parse counts as absent rather than fatal
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, AssertionError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        content = html_to_text(content)
    return content


def html_to_text(markup: str) -> str:
    markup = re.sub(r"(?is)<(script|style|head).*?</\1>", "", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</tr>|</h\d>", "\n", markup)
    markup = re.sub(r"(?s)<blockquote.*?</blockquote>", "", markup)
    text = html.unescape(re.sub(r"<[^>]+>", "", markup))
    return re.sub(r"\n{3,}", "\n\n", text)


def extract_instruction(text: str) -> str:
    """The new text of a reply: everything above the first quote header, quoted block or signature."""
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.startswith(">"):
            break
        if any(r.match(line) for r in _QUOTE_HEADER_RES) or any(r.match(line) for r in _SIGNATURE_RES):
            break
        kept.append(line.rstrip())
    instruction = "\n".join(kept).strip()
    return instruction[:MAX_INSTRUCTION_CHARS]


def parse(raw: bytes) -> ParsedMail:
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything it still raises means unusable input
        raise MalformedMailError(f"the message could not be parsed as MIME: {exc}") from exc
    if not isinstance(msg, EmailMessage):
        raise MalformedMailError("the message could not be parsed as MIME")
    name, address = parseaddr(_header(msg, "From"))
    if "@" not in address:
        raise MalformedMailError("the message has no usable From address")
    recipients = tuple(a.lower() for _, a in getaddresses([_header(msg, h) for h in ("To", "Cc")]) if "@" in a)
    return ParsedMail(
        sender=address.strip().lower(),
        sender_name=name,
        subject=_header(msg, "Subject"),
        rfc_message_id=next(iter(_MSGID_RE.findall(_header(msg, "Message-ID"))), ""),
        in_reply_to=tuple(_MSGID_RE.findall(_header(msg, "In-Reply-To"))),
        references=tuple(_MSGID_RE.findall(_header(msg, "References"))),
        text=_body_text(msg),
        recipients=recipients,
    )


def _clean(value: str, limit: int = 200) -> str:
    """One line, no control characters: nothing from inbound mail can start a header of its own."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", value).strip()[:limit]


def reply_subject(subject: str) -> str:
    subject = _clean(subject) or "Your website change"
    return subject if re.match(r"(?i)^re:", subject) else f"Re: {subject}"


def reply_envelope(
    *,
    from_address: str,
    to: str,
    reply_to: str,
    subject: str,
    in_reply_to: str,
    references: tuple[str, ...],
    fallback_id: str,
) -> dict[str, str]:
    """The reply's addressing and threading headers. Message ids are the only values copied verbatim, so
    they are re-validated; everything else is reduced to one clean line. When the inbound mail had no
    Message-ID, ``fallback_id`` stands in so In-Reply-To/References are never empty (SES rejects empty
    header values)."""
    parent = in_reply_to if _MSGID_RE.fullmatch(in_reply_to) else fallback_id
    chain = [m for m in references if _MSGID_RE.fullmatch(m)] + [parent]
    return {
        "fromAddress": _clean(from_address),
        "to": _clean(to),
        "replyTo": _clean(reply_to),
        "subject": reply_subject(subject),
        "inReplyTo": parent,
        "references": " ".join(list(dict.fromkeys(chain))[-20:]),
    }
