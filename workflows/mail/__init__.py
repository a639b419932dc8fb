"""Inbound MIME in, clean facts out; outbound reply headers (pure).

Parsing uses the stdlib ``email`` package with the modern policy. The body becomes text (HTML is converted),
and the instruction is the *new* text only: quoted replies, attribution lines, forwarded/original-message
blocks and signatures are removed. Finding where the quoted part starts uses the multi-language header
patterns of ``mail-parser-reply`` (imported only when a mail is parsed, to keep the handler's cold import lean).

Everything here is written for hostile input: each public function either returns a value or raises one of
our :class:`~workflows.errors.RejectedMailError` subclasses, never anything else (property-tested).

The submodules:

- :mod:`~workflows.mail.limits`: the bounds (sizes, counts, scan lengths) and the quote marker.
- :mod:`~workflows.mail.headers`: the parsed result, header helpers, bounces/auto-replies/loops, ``read_headers``.
- :mod:`~workflows.mail.body`: body text, the bounded MIME walk, attachments, and ``parse``.
- :mod:`~workflows.mail.html_text`: HTML bodies to text.
- :mod:`~workflows.mail.new_text`: the new text of a reply (``extract_instruction``).
- :mod:`~workflows.mail.outbound`: subject tags, reply subjects and ``reply_envelope``.
"""

from __future__ import annotations

from workflows.mail.body import parse
from workflows.mail.headers import MailHeaders, ParsedMail, is_address, one_line, read_headers
from workflows.mail.html_text import html_to_text
from workflows.mail.limits import (
    HEADER_PREFIX_BYTES,
    MAX_INSTRUCTION_CHARS,
    MAX_MIME_PARTS,
    MAX_RAW_BYTES,
    QUOTE_MARK,
    REPLY_SCAN_CHARS,
)
from workflows.mail.new_text import FORWARD_MARKER, extract_instruction
from workflows.mail.outbound import bare_subject, is_reply_subject, reply_envelope, reply_subject, subject_tag

__all__ = [
    "FORWARD_MARKER",
    "HEADER_PREFIX_BYTES",
    "MAX_INSTRUCTION_CHARS",
    "MAX_MIME_PARTS",
    "MAX_RAW_BYTES",
    "QUOTE_MARK",
    "REPLY_SCAN_CHARS",
    "MailHeaders",
    "ParsedMail",
    "bare_subject",
    "extract_instruction",
    "html_to_text",
    "is_address",
    "is_reply_subject",
    "one_line",
    "parse",
    "read_headers",
    "reply_envelope",
    "reply_subject",
    "subject_tag",
]
