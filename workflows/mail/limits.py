"""The bounds of inbound mail handling, shared by the other modules of :mod:`workflows.mail`.

How large a raw mail, its MIME tree, its HTML, its subject and its instruction may be, how much text reply
detection scans, and the private-use character that marks where HTML conversion removed a quoted block
(written by :mod:`~workflows.mail.html_text`, read by :mod:`~workflows.mail.new_text`).
"""

from __future__ import annotations

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
