"""Property-based tests: generated and mutated MIME never makes the parser raise anything but our own rejection
errors, and what comes out is always safe to use (one-line headers, safe file names, bounded text)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from workflows import attachments as att
from workflows import mail
from workflows.errors import RejectedMailError
from workflows.mail.html_text import _html_to_text

# No example database (it would write .hypothesis/ into the checkout); no deadline (CI machines vary).
FAST = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
MIME = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "shift_jis", "utf-16", "utf-7", "koi8-r", "x-bogus", "", '"utf-8"']
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "garbage"]
LEAF_TYPES = ["text/plain", "text/html", "image/png", "application/pdf", "application/zip", "text/calendar"]
MULTI_TYPES = ["multipart/mixed", "multipart/alternative", "multipart/related", "multipart/signed", "multipart/report"]
HEADER_NAMES = [
    "Subject", "Message-ID", "In-Reply-To", "References", "Auto-Submitted", "Precedence", "Reply-To", "Cc",
    "Content-Disposition", "X-Autoreply", "DKIM-Signature", "Return-Path", "List-Id",
]  # fmt: skip

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200)
header_text = st.one_of(
    text,
    st.sampled_from(
        [
            "=?UTF-8?B?w5ZmZm51bmc=?=",
            "=?utf-8?q?a=0D=0ABcc:_x@y?=",
            "=?bogus?x?abc?=",
            "=?UTF-8?B?####?=",
            "<a@b> <c@d>",
            '"a@b.com" <c@d.com>',
            "undisclosed-recipients:;",
            "a@b.com)<c@d.com>",
            "(comment (nested) a@b.com",
            "\x00\x01",
            "",
        ]
    ),
)


def _fold(value: str) -> str:
    return re.sub(r"(.{60})", r"\1\r\n ", value)


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    content_type = draw(st.sampled_from(LEAF_TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    body = draw(st.one_of(text.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=300)))
    headers = [f"Content-Type: {content_type}" + (f"; charset={charset}" if charset else "")]
    headers.append(f"Content-Transfer-Encoding: {encoding}")
    if draw(st.booleans()):
        name = draw(st.one_of(text, st.sampled_from(["../../x.png", "a\r\nb.txt", "CON", "..", "\u202egnp.exe"])))
        headers.append(f'Content-Disposition: {draw(st.sampled_from(["attachment", "inline", "bogus"]))}; '
                       f'filename="{name}"')  # fmt: skip
    return ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8", "surrogatepass") + body


@st.composite
def part(draw: st.DrawFn, depth: int = 0) -> bytes:
    if depth >= 3 or draw(st.integers(0, 2)) == 0:
        return draw(leaf())
    boundary = draw(st.sampled_from(["b", "==b==", "x" * 70, "", "b b"])) + str(depth)
    children = draw(st.lists(part(depth + 1), min_size=0, max_size=4))
    content_type = draw(st.sampled_from(MULTI_TYPES))
    out = [f'Content-Type: {content_type}; boundary="{boundary}"\r\n\r\npreamble\r\n'.encode()]
    for child in children:
        out.append(f"--{boundary}\r\n".encode() + child + b"\r\n")
    if draw(st.booleans()):
        out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


@st.composite
def message(draw: st.DrawFn) -> bytes:
    lines = []
    if draw(st.integers(0, 9)):
        lines.append(f"From: {draw(header_text) if draw(st.booleans()) else 'Alice <alice@example.com>'}")
    lines.append("To: bakery@mail.webordinary.test")
    for name in draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=6)):
        lines.append(f"{name}: {_fold(draw(header_text))}")
    head = "\r\n".join(lines).encode("utf-8", "surrogatepass")
    return head + b"\r\nMIME-Version: 1.0\r\n" + draw(part())


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(message()))
    for _ in range(draw(st.integers(0, 4))):
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        match draw(st.sampled_from(["truncate", "delete", "duplicate", "insert", "flip", "crlf"])):
            case "truncate":
                del raw[at:]
            case "delete":
                del raw[at : at + draw(st.integers(1, 50))]
            case "duplicate":
                raw[at:at] = raw[at : at + draw(st.integers(1, 200))]
            case "insert":
                raw[at:at] = draw(st.sampled_from([b"\r\n\r\n", b"--", b"\x00", b"=?", b"\xff\xfe", b"\n>", b"<"]))
            case "flip":
                raw[at] ^= draw(st.integers(1, 255))
            case "crlf":
                raw = bytearray(bytes(raw).replace(b"\r\n", b"\n"))
    return bytes(raw)


def _safe(call: object, *args: object) -> object:
    try:
        return call(*args)  # type: ignore[operator]
    except RejectedMailError:
        return None


def _check_parsed(raw: bytes) -> None:
    headers = _safe(mail.read_headers, raw, "mail.webordinary.test")
    parsed = _safe(mail.parse, raw)
    for facts in (headers, parsed):
        if facts is None:
            continue
        assert isinstance(facts, mail.MailHeaders)
        for value in (facts.sender, facts.sender_name, facts.subject, *facts.references, *facts.in_reply_to):
            assert not re.search(r"[\x00-\x1f\x7f]", value)
        assert facts.sender == "" or mail.is_address(facts.sender)
    if isinstance(parsed, mail.ParsedMail):
        instruction = mail.extract_instruction(parsed.text)
        assert mail.QUOTE_MARK not in instruction and len(instruction) <= mail.REPLY_SCAN_CHARS
        for attachment in parsed.attachments:
            assert attachment.kind in {"image", "document"}
            assert "/" not in attachment.filename and "\\" not in attachment.filename
            assert not attachment.filename.startswith(".")


@MIME
@given(message())
def test_generated_mime_never_raises_anything_but_a_rejection(raw: bytes) -> None:
    _check_parsed(raw)


@MIME
@given(mutated())
@example(
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    + b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" * 500
)
@example(b"From: a@b.c\r\nContent-Type: text/html\r\n\r\n<![unknown keyword]><!---><x y='")
@example(b"From: =?utf-8?b?\xff\xfe?= <a@b.c>\r\nSubject: \xff\r\n\r\n\xff")
def test_mutated_mime_never_raises_anything_but_a_rejection(raw: bytes) -> None:
    _check_parsed(raw)


@FAST
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise_anything_but_a_rejection(raw: bytes) -> None:
    _check_parsed(raw)


tags = st.sampled_from(
    ["<p>", "</p>", "<div>", "</div>", "<br>", "<blockquote>", "</blockquote>", '<div class="gmail_quote">',
     "<li>", "<pre>", "</pre>", '<a href="https://x.test">', "</a>", "<script>", "</script>", "<![if !x]>",
     "<!--", "-->", "<hr>", '<div id="divRplyFwdMsg">', "&nbsp;", "&#x0;", "&bogus;", "<", ">", "\ue000"]
)  # fmt: skip


@FAST
@given(st.lists(st.one_of(tags, text), max_size=40).map("".join))
def test_html_conversion_never_raises(markup: str) -> None:
    assert isinstance(mail.html_to_text(markup), str)
    assert mail.QUOTE_MARK not in mail.extract_instruction(_html_to_text(markup, mark_quotes=True))


@FAST
@given(st.lists(st.one_of(text, st.sampled_from(["> quoted", "On Mon, Bob <b@x.com> wrote:", "-- ", "From: x",
                                                 "Sent: y", "Subject: z", "__________", "Sent from my iPhone"])),
                max_size=30).map("\n".join))  # fmt: skip
def test_instruction_extraction_never_raises_and_never_invents_text(body: str) -> None:
    instruction = mail.extract_instruction(body)
    normalised = re.sub(r"[\u200b\u200c\u200d\u2060\ufeff\ue000]", "", body.replace("\xa0", " "))
    source_lines = {line.strip() for line in normalised.replace("\r", "\n").split("\n")}
    for line in instruction.split("\n"):
        assert line.strip() in source_lines or line == mail.FORWARD_MARKER or not line.strip()


@FAST
@given(text, st.sampled_from(["image/png", "application/pdf", "text/plain", "application/octet-stream"]))
def test_sanitised_filenames_are_one_harmless_component(name: str, content_type: str) -> None:
    safe = att.sanitise_filename(name, content_type, 1)
    assert safe and len(safe) <= att.MAX_FILENAME_CHARS
    assert not re.search(r'[\x00-\x1f\x7f/\\<>:"|?*\u202e\u200b]', safe)
    assert not safe.startswith((".", " ")) and safe not in {".", ".."}


@FAST
@given(header_text, header_text, st.lists(header_text, max_size=5))
def test_reply_headers_are_always_one_clean_line(subject: str, parent: str, references: list[str]) -> None:
    envelope = mail.reply_envelope(
        from_address="bakery@mail.webordinary.test",
        to="alice@example.com",
        reply_to="bakery+ab3k9x2m@mail.webordinary.test",
        subject=subject,
        in_reply_to=parent,
        references=tuple(references),
        fallback_id="<ses@mail.webordinary.test>",
        thread_id="ab3k9x2m",
    )
    for value in envelope.values():
        assert value and not re.search(r"[\x00-\x1f\x7f\u2028\u2029\u0085]", value)
    assert all(re.fullmatch(r"<[!-;=?-~]+>", ref) for ref in envelope["references"].split())
