"""The headers of our outbound replies (pure).

The ``[wo:xxxxxxxx]`` thread tag in subjects, reply subjects (``Re:`` prefixes recognised and stripped), and
:func:`reply_envelope`, the reply's addressing and threading headers.
"""

from __future__ import annotations

import re

from workflows.mail.headers import _MSGID_RE, one_line
from workflows.mail.limits import MAX_SUBJECT_CHARS

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
