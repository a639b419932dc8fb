# ruff: noqa: RUF001  (mail in many languages: Cyrillic and typographic characters are the point)
"""Mail parsing (pure): real mail from many clients, encodings, structures, automatic mail, hostile headers, and
the headers of our replies."""

from __future__ import annotations

import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from workflows import mail
from workflows.attachments import AttachmentLimits
from workflows.errors import (
    AttachmentTooLargeError,
    MalformedMailError,
    RejectedMailError,
    TooManyAttachmentsError,
)
from workflows.mail.body import _decode_bytes
from workflows.mail.html_text import _html_to_text

REAL = FIXTURES / "mail" / "corpus" / "real"
OWN = FIXTURES / "mail" / "corpus" / "own"
DOMAIN = "mail.webordinary.test"


def _instruction(raw: bytes) -> str:
    return mail.extract_instruction(mail.parse(raw).text)


def _mail(body: str = "Make the header red.", **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Alice <alice@example.com>")
    msg["To"] = headers.pop("To", f"bakery@{DOMAIN}")
    msg["Subject"] = headers.pop("Subject", "Website")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


# --- real mail: every client in the shared samples ---------------------------------------------------------


@pytest.mark.parametrize("path", sorted((REAL / "talon" / "standard_replies").glob("*.eml")), ids=lambda p: p.name)
def test_real_client_replies_yield_only_the_new_text(path: Path) -> None:
    instruction = _instruction(path.read_bytes())
    assert instruction == "Hello"
    expected = path.with_name(path.stem + "_reply_text")
    if expected.exists():  # talon keeps signatures, we drop them: ours is its text up to the signature
        assert expected.read_text().startswith(instruction)


def test_a_reply_that_shares_a_block_with_its_quote_keeps_the_reply_and_drops_the_yahoo_attribution() -> None:
    instruction = _instruction((REAL / "talon" / "reply-quotations-share-block.eml").read_bytes())
    assert instruction.startswith("Hi Katharine.  Sounds great.")
    assert instruction.endswith("look forward to hearing from you soon.\n\nJoe XXX")
    assert "wrote" not in instruction and "New Booking Inquiry" not in instruction


@pytest.mark.parametrize(
    "path",
    [*sorted((REAL / "talon" / "html_replies").glob("*.html"))],
    ids=lambda p: p.name,
)
def test_real_html_replies_become_the_new_text(path: Path) -> None:
    text = _html_to_text(path.read_text(encoding="utf-8", errors="replace"), mark_quotes=True)
    assert mail.extract_instruction(text) == "Hi. I am fine."
    readable = mail.html_to_text(path.read_text(encoding="utf-8", errors="replace"))
    assert readable.startswith("Hi. I am fine.") and "<" not in readable.split("\n")[0]


def test_a_reply_separated_by_a_rule_keeps_what_is_above_it() -> None:
    html = (REAL / "talon" / "reply-separated-by-hr.html").read_text()
    assert mail.extract_instruction(_html_to_text(html, mark_quotes=True)) == "Hi\nthere\nBob"


EMAIL_REPLY_PARSER = {
    "correct_sig.txt": "this is an email with a correct -- signature.",
    "email_1_1.txt": "Hi folks\n\nWhat is the best way to clear a Riak bucket of all key, values after\n"
    "running a test?\nI am currently using the Java HTTP API.",
    "email_1_3.txt": "Oh thanks.\n\nHaving the function would be great.",
    "email_1_4.txt": "Awesome! I haven't had another problem with it.",
    "email_1_6.txt": "I get proper rendering as well.",
    "email_1_7.txt": ":+1:",
    "email_1_8.txt": "I will reply under this one\n\nand under this.",
    "email_2_1.txt": "Outlook with a reply",
    "email_2_2.txt": "Outlook with a reply directly above line",
    "email_2_3.txt": "Outlook with a reply directly above line",
    "email_BlackBerry.txt": "Here is another email",
    "email_iPhone.txt": "Here is another email",
    "email_multi_word_sent_from_my_mobile_device.txt": "Here is another email",
    "email_one_is_not_on.txt": "Thank, this is really helpful.\n\nOne outstanding question I had:\n\n"
    "Locally (on development), when I run...",
    "email_sent_from_my_not_signature.txt": "Here is another email\n\nSent from my desk, is much easier then my mobile "
    "phone.",
    "email_sig_delimiter_in_middle_of_line.txt": "Hi there!\n\nStuff happened.\n\nAnd here is a fix -- this is not a "
    "signature.\n\nkthxbai",
    "pathological.txt": "I think you're onto something. I will try to fix the problem as soon as I\nget back to a "
    "computer.",
}


@pytest.mark.parametrize("name", sorted(EMAIL_REPLY_PARSER))
def test_plain_text_replies_from_github_samples(name: str) -> None:
    text = (REAL / "email_reply_parser" / name).read_text(encoding="utf-8")
    assert mail.extract_instruction(text) == EMAIL_REPLY_PARSER[name]


def test_inline_and_bottom_posted_replies_keep_every_new_part() -> None:
    text = (REAL / "email_reply_parser" / "email_1_2.txt").read_text(encoding="utf-8")
    instruction = mail.extract_instruction(text)
    assert instruction.startswith("Hi,\n\nYou can list the keys for the bucket")
    assert instruction.endswith('you’ll need to delete them all individually."')
    assert "Abhishek Kona wrote" not in instruction and "riak-users" not in instruction and "\n>" not in instruction


def test_lists_indentation_and_lines_that_only_look_like_headers_are_kept() -> None:
    bullets = (REAL / "email_reply_parser" / "email_bullets.txt").read_text(encoding="utf-8")
    assert mail.extract_instruction(bullets).endswith("   - how about bullets\n   - and another")
    greedy = (REAL / "email_reply_parser" / "greedy_on.txt").read_text(encoding="utf-8")
    assert mail.extract_instruction(greedy).startswith("On your remote host you can run:\n\n     telnet 127.0.0.1")
    for text in (
        "Change the opening hours:\nFrom: 9am\nTo: 5pm",
        "On Monday at 10:30 change the banner to say:\nSale!",
        "- change the title\n- remove Bob",
        "Sent from the contact form, messages should go to orders@example.com.\nPlease fix that.",
        "Thanks, and also make the footer blue.",
    ):
        assert mail.extract_instruction(text) == text


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Make it blue.\n\nOn Tue, 3 Nov 2026, Bob <bob@example.com> wrote:\n> old", "Make it blue."),
        ("Mach es blau.\n\nAm 03.11.2026 um 10:00 schrieb Bob <bob@example.com>:\n> alt", "Mach es blau."),
        ("En bleu.\n\nLe mar. 3 nov. 2026 à 10:00, Bob <bob@example.com> a écrit :\n> vieux", "En bleu."),
        ("Azul.\n\nEl mar, 3 nov 2026 a las 10:00, Bob (<bob@example.com>) escribió:\n> viejo", "Azul."),
        ("Синим.\n\nОт: Bob\nОтправлено: 3 ноября 2026 г. 10:00\nКому: Alice\nТема: Сайт\n\nстарое", "Синим."),
        (
            "Blue.\n\nFrom: Bob <bob@example.com>\nSent: Tuesday, November 3, 2026\nTo: Alice\nSubject: x\n\nold",
            "Blue.",
        ),
        ("Blue.\n\n-----Original Message-----\nold", "Blue."),
        ("Blue.\n\n________________________________\nFrom: Bob\nold", "Blue."),
        ("Blue.\n\nSent from my iPhone\n\nOn 3 Nov 2026, at 10:00, Bob <b@x.com> wrote:\n> old", "Blue."),
        ("Blue.\n\nVon meinem iPhone gesendet", "Blue."),
        ("Blue.\n\nGet Outlook for iOS", "Blue."),
        ("Blue.\n\n-- \nAlice Baker\nHarbour Bakery\n+1 555 0100", "Blue."),
        ("Blue.\n\nKind regards,\nAlice Baker\nOwner, Harbour Bakery", "Blue."),
        ("> old\n> text\n\nBlue, below the quote.", "Blue, below the quote."),
        ("On 3 Nov 2026, Bob <b@x.com> wrote:\n> old", ""),
    ],
)
def test_quote_headers_and_signatures_of_many_clients_and_languages(text: str, expected: str) -> None:
    assert mail.extract_instruction(text) == expected


def test_a_forwarded_message_is_kept_as_material_below_the_new_text() -> None:
    instruction = _instruction((OWN / "13-gmail-forwarded.eml").read_bytes())
    assert instruction == (
        "Please put this on the news page.\n\n---------- Forwarded message ----------\n"
        "Our autumn loaf is back: rye, walnuts and honey."
    )


# --- encodings, structures, headers -----------------------------------------------------------------------


def test_rfc2047_subjects_and_names_any_charset_and_transfer_encoding() -> None:
    parsed = mail.parse((OWN / "02-rfc2047-subject-and-name.eml").read_bytes())
    assert parsed.subject == "Öffnungszeiten ändern – bitte" and parsed.sender_name == "Jörg Müller"
    assert mail.extract_instruction(parsed.text).startswith("Bitte ändere die Öffnungszeiten")
    assert "Café & Thé" in _instruction((OWN / "03-latin1-quoted-printable.eml").read_bytes())
    assert "03-1234-5678 に変更" in _instruction((OWN / "04-shift-jis-base64.eml").read_bytes())
    assert _instruction((OWN / "05-unknown-charset.eml").read_bytes()) == "Change the headline to “Fresh bread daily”."
    assert "5 €" in _instruction((OWN / "06-charset-declared-ascii-is-utf8.eml").read_bytes())
    assert _instruction((OWN / "42-utf16-body.eml").read_bytes()) == "Make the contact form ask for a phone number."
    assert _decode_bytes(b"caf\xe9", "no-such-charset") == "café"  # not UTF-8 either: Windows-1252


def test_long_folded_headers_are_unfolded() -> None:
    parsed = mail.parse((OWN / "07-long-folded-headers.eml").read_bytes())
    assert parsed.subject.startswith("A very long subject line that a mail client folds over several lines")
    assert "\n" not in parsed.subject and len(parsed.references) == 30


SES_FIRST = "<0102019389a1b2c3-7d8e9f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a-000000@eu-west-1.amazonses.com>"
SES_LATEST = "<0102019389a4d5e6-1f2e3d4c-5b6a-4978-8a9b-c0d1e2f3a4b5-000000@eu-west-1.amazonses.com>"


def test_reply_ids_folded_into_encoded_words_by_pythons_email_package_are_decoded() -> None:
    # What a reply written by a Python-based client or tool carries: the package folds a long id into RFC 2047
    # encoded words when a policy with a line limit serialises it (here as it does, not as we imagine it does).
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Alice <alice@example.com>"
    msg["To"] = f"bakery@{DOMAIN}"
    msg["Subject"] = "Re: Your change is ready"
    msg["In-Reply-To"] = SES_LATEST
    msg["References"] = f"<CAF1@mail.example.com> {SES_FIRST} {SES_LATEST}"
    msg.set_content("Bold, please.")
    raw = msg.as_bytes()
    assert b"In-Reply-To: =?utf-8?q?=3C" in raw and b"\r\n =?utf-8?q?" in raw  # encoded and folded

    headers = mail.read_headers(raw)

    assert headers.in_reply_to == (SES_LATEST,)
    assert headers.references == ("<CAF1@mail.example.com>", SES_FIRST, SES_LATEST)
    assert mail.parse(raw).in_reply_to == (SES_LATEST,)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("43-python-encoded-reply-ids.eml", ("<CAF0043-first@mail.example.com>", SES_FIRST, SES_LATEST)),
        ("44-encoded-reply-ids-unfolded.eml", ("<CAF0044-first@mail.example.com>", SES_FIRST, SES_LATEST)),
    ],
)
def test_encoded_reply_ids_in_the_corpus_are_decoded(name: str, expected: tuple[str, ...]) -> None:
    headers = mail.read_headers((OWN / name).read_bytes())
    assert headers.in_reply_to == (SES_LATEST,)
    assert headers.references == expected


def test_encoded_reply_ids_keep_the_cap_on_how_many_are_read() -> None:
    ids = [
        f"<id-{n:03d}-0102019389a1b2c3-7d8e9f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a-000000@eu-west-1.amazonses.com>"
        for n in range(200)
    ]
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Alice <alice@example.com>"
    msg["References"] = " ".join(ids)
    msg["In-Reply-To"] = " ".join(ids[:10])
    msg.set_content("x")
    raw = msg.as_bytes()
    assert b"=?utf-8?q?" in raw

    headers = mail.read_headers(raw)

    assert headers.references == tuple(ids[-50:])
    assert headers.in_reply_to == tuple(ids[5:10])


def test_undecodable_encoded_words_still_give_the_plain_ids() -> None:
    raw = (
        b"From: alice@example.com\r\nTo: bakery@mail.webordinary.test\r\nSubject: x\r\n"
        b"References: <plain@example.com> =?no-such-charset?q?=3Cx=40y=3E?= =?utf-8?b?!!!?=\r\n\r\nHi\r\n"
    )
    assert mail.read_headers(raw).references[:1] == ("<plain@example.com>",)


def test_format_flowed_is_joined_back_into_lines() -> None:
    assert _instruction((OWN / "08-format-flowed.eml").read_bytes()) == (
        "Please replace the first paragraph on the about page with: We have baked bread in Harbour Street since "
        "1952, from flour milled ten miles away."
    )


def test_multipart_structures_text_and_attachments_wherever_they_sit() -> None:
    nested = mail.parse((OWN / "09-nested-multipart.eml").read_bytes())
    assert [(a.filename, a.kind) for a in nested.attachments] == [("logo.png", "image"), ("menu.pdf", "document")]
    ios = mail.parse((OWN / "10-ios-inline-images.eml").read_bytes())
    assert mail.extract_instruction(ios.text) == "Use this photo as the header image\n\nand this one on the about page."
    assert [a.filename for a in ios.attachments] == ["IMG_0042.JPG", "IMG_0043.JPG"]
    apple = mail.parse((OWN / "38-apple-mail-related-image.eml").read_bytes())
    assert [a.filename for a in apple.attachments] == ["Team Photo 2026.png"]
    signed = mail.parse((OWN / "32-smime-signed.eml").read_bytes())
    assert signed.attachments == () and "Harbour Bakery since 1952" in signed.text


def test_html_only_mail_is_converted_to_readable_text() -> None:
    outlook = _instruction((OWN / "11-outlook-html-only-reply.eml").read_bytes())
    assert outlook == (
        "Looks good. Two more things:\n\n1. Make the button blue\n\n2. Link it to our shop "
        "(https://shop.example.com/order)"
    )
    assert mail.html_to_text("<p>a &amp; b</p><script>x()</script><ul><li>one</li><li>two</li></ul>") == (
        "a & b\n\n- one\n- two"
    )
    assert mail.html_to_text("<div>Hi</div><div><br></div><div>Bye</div>") == "Hi\n\nBye"
    assert mail.html_to_text('<a href="mailto:a@b.c">write us</a>') == "write us (a@b.c)"
    assert mail.html_to_text("<![if !supportLists]>1.<![endif]> one <![unknown]> two").startswith("1.")


def test_the_sender_must_be_one_plain_address() -> None:
    assert mail.read_headers(_mail(From='"alice@example.com" <mallory@evil.test>').as_bytes()).sender == (
        "mallory@evil.test"
    )
    assert mail.read_headers(_mail(From="ALICE@Example.COM").as_bytes()).sender == "alice@example.com"
    for raw in (
        (OWN / "22-no-from.eml").read_bytes(),
        (OWN / "23-two-from-addresses.eml").read_bytes(),
        b"From: alice@example.com\nFrom: mallory@evil.test\nTo: x@y.z\n\nhi",
        b"From: undisclosed-recipients:;\n\nhi",
        b"From: alice@example.com)<mallory@evil.test>\n\nhi",
        b"From: <alice@exa\xff mple.com>\n\nhi",
        b'From: "\r\n" <x>\n\nhi',
    ):
        headers = mail.read_headers(raw)
        assert headers.sender in {"", "mallory@evil.test"} and (headers.sender or headers.sender_problem)
        assert headers.sender != "alice@example.com"


@pytest.mark.parametrize(
    "raw,kind",
    [
        ((OWN / "18-auto-reply-out-of-office.eml").read_bytes(), "auto-reply"),
        ((OWN / "19-precedence-bulk.eml").read_bytes(), "auto-reply"),
        ((OWN / "20-x-autoreply.eml").read_bytes(), "auto-reply"),
        ((OWN / "34-mailing-list.eml").read_bytes(), "auto-reply"),
        ((OWN / "21-dsn-bounce.eml").read_bytes(), "bounce"),
        ((OWN / "33-loop-own-reply.eml").read_bytes(), "loop"),
        (b"From: x@example.com\nReturn-Path: <>\n\nhi", "bounce"),
        (b"From: x@example.com\nX-Failed-Recipients: y@z.com\n\nhi", "bounce"),
        (b"From: x@example.com\nSubject: Undeliverable: Website\n\nhi", "bounce"),
        (b"From: x@example.com\nSubject: Out of Office: back Monday\n\nhi", "auto-reply"),
        (b"From: x@example.com\nAuto-Submitted: auto-generated\n\nhi", "auto-reply"),
        (b"From: x@example.com\nAuto-Submitted: no\n\nhi", None),
        (b"From: x@example.com\nSubject: Out of office hours on the contact page\n\nhi", None),
        (b"From: x@example.com\nSubject: Auto parts page\n\nhi", None),
    ],
)
def test_bounces_auto_replies_and_loops_are_recognised(raw: bytes, kind: str | None) -> None:
    assert mail.read_headers(raw, own_domain=DOMAIN).automatic == kind


def test_header_values_are_one_clean_line() -> None:
    parsed = mail.parse((OWN / "25-header-injection-subject.eml").read_bytes())
    assert parsed.subject == "Prices Bcc: victim@evil.test X-Evil: 1"
    assert parsed.references == ("<a@b>", "<c@d>") and parsed.in_reply_to == ("<valid@mail.example.com>",)
    assert mail.one_line("a\r\nBcc: b\x00\u2028c") == "a Bcc: b c"


# --- limits and hostile structure -------------------------------------------------------------------------


def _with_attachments(count: int, size: int) -> bytes:
    msg = _mail("Use these.")
    for i in range(count):
        msg.add_attachment(bytes([i % 256]) * size, maintype="application", subtype="octet-stream", filename=f"f{i}")
    return msg.as_bytes()


def test_attachment_limits_count_size_and_total() -> None:
    limits = AttachmentLimits(max_count=3, max_bytes=1000, max_total_bytes=2500)
    assert len(mail.parse(_with_attachments(3, 800), limits).attachments) == 3
    with pytest.raises(TooManyAttachmentsError, match="4 attachments; the limit is at most 3"):
        mail.parse(_with_attachments(4, 10), limits)
    with pytest.raises(AttachmentTooLargeError, match="f0 is"):
        mail.parse(_with_attachments(1, 1001), limits)
    with pytest.raises(AttachmentTooLargeError, match="add up to"):
        mail.parse(_with_attachments(3, 900), limits)


def test_nesting_bombs_and_part_floods_are_malformed_mail_not_crashes() -> None:
    deep = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b0\n\n" + b"".join(
        f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n".encode() for i in range(200)
    )
    with pytest.raises(MalformedMailError):
        mail.parse(deep)
    msg = _mail("x")
    for i in range(mail.MAX_MIME_PARTS):
        msg.add_attachment(f"{i}", subtype="plain", disposition="inline")
    with pytest.raises(MalformedMailError, match="more than"):
        mail.parse(msg.as_bytes())
    with pytest.raises(MalformedMailError, match="missing boundary"):
        mail.parse((OWN / "28-malformed-no-boundary.eml").read_bytes())


def test_the_instruction_is_bounded_without_losing_the_reason() -> None:
    huge = "change this " * 100_000
    instruction = mail.extract_instruction(huge)
    assert mail.MAX_INSTRUCTION_CHARS < len(instruction) <= mail.REPLY_SCAN_CHARS  # intake rejects, explaining


def test_parse_raises_only_rejections_on_junk() -> None:
    for raw in (
        b"",
        b"\x00" * 100,
        b"From:\n\n",
        b'Content-Type: multipart/mixed; boundary=""\n\n--\n--',
        b"\xff" * 10,
    ):
        try:
            mail.parse(raw)
        except RejectedMailError:
            pass


# --- our replies ----------------------------------------------------------------------------------------------


def test_reply_subjects_carry_one_tag_and_nothing_else() -> None:
    assert mail.reply_subject("Phone wording", "ab3k9x2m") == "Re: Phone wording [wo:ab3k9x2m]"
    assert mail.reply_subject("Re: Phone wording [wo:ab3k9x2m]", "ab3k9x2m") == "Re: Phone wording [wo:ab3k9x2m]"
    assert mail.reply_subject("x\r\nBcc: evil@x.test") == "Re: x Bcc: evil@x.test"
    assert mail.reply_subject("") == "Re: Your website change"
    assert mail.subject_tag("Re: Phone wording [wo:AB3K9X2M]") == "ab3k9x2m"
    assert mail.subject_tag("Re: [wo:../../x]") is None
    with pytest.raises(ValueError):
        mail.reply_subject("x", "bad]\r\nBcc: y")
    assert mail.bare_subject("Re: AW: Fwd: Logo [wo:ab3k9x2m]") == "Logo"
    assert mail.is_reply_subject("RE: x") and mail.is_reply_subject("AW: x") and not mail.is_reply_subject("Logo")


def test_reply_envelopes_copy_only_valid_message_ids() -> None:
    envelope = mail.reply_envelope(
        from_address="bakery@mail.webordinary.test",
        to="alice@example.com\r\nBcc: evil@x.test",
        reply_to="bakery+ab3k9x2m@mail.webordinary.test",
        subject="Hi\r\nX-Evil: 1",
        in_reply_to="<ok@example.com>\r\nBcc: x",
        references=("<a@b>", "<bad id>", "<c@d>\nX: y"),
        fallback_id="<ses-1@mail.webordinary.test>",
        thread_id="ab3k9x2m",
    )
    assert envelope["inReplyTo"] == "<ses-1@mail.webordinary.test>"
    assert envelope["references"] == "<a@b> <ses-1@mail.webordinary.test>"
    assert all(not re.search(r"[\x00-\x1f]", value) for value in envelope.values())
    assert envelope["subject"] == "Re: Hi X-Evil: 1 [wo:ab3k9x2m]"
