"""HTML mail bodies to text (pure).

Block elements become lines, links keep their address, scripts and styles are dropped, and quoted blocks
(``<blockquote>``, the quote containers of Gmail, Thunderbird, Yahoo and others, Outlook's reply header)
are dropped too, or replaced by :data:`~workflows.mail.limits.QUOTE_MARK` when the text is read for the new
text of a reply.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from workflows.mail.limits import MAX_HTML_CHARS, QUOTE_MARK

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
