"""The new text of a reply: :func:`extract_instruction` and its helpers (pure).

Quoted lines and their attribution, the quoted message below a reply header (every client's style, many
languages, using the patterns of ``mail-parser-reply``, imported on first use), separators and signatures
are removed; a forwarded message is kept below the user's own text.
"""

from __future__ import annotations

import functools
import re

from workflows.mail.limits import QUOTE_MARK, REPLY_SCAN_CHARS, REPLY_SCAN_LINE_CHARS

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
