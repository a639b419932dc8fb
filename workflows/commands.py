"""Plain keywords a message can be instead of an instruction (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

# What a site owner can write instead of an instruction; projects may name their own words (Project config).
PUBLISH_WORDS = ("publish", "publish it", "go live", "make it live")
UNDO_WORDS = ("undo", "undo it", "undo that", "take it back")
CONTINUE_WORDS = ("continue", "continue please", "please continue", "carry on", "go on", "keep going")
Keyword = Literal["publish", "undo", "continue"]

_STOP_RE = re.compile(r"^\s*(stop|cancel|halt)[\s.!]*$", re.IGNORECASE)


def is_stop(instruction: str) -> bool:
    """``STOP`` (or cancel/halt) alone: end the running command, keeping its work, and start nothing new."""
    return bool(_STOP_RE.match(instruction))


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[.!?,;:]+", " ", text).lower().split())


def keyword(
    instruction: str,
    publish_words: Iterable[str] = PUBLISH_WORDS,
    undo_words: Iterable[str] = UNDO_WORDS,
    continue_words: Iterable[str] = CONTINUE_WORDS,
) -> Keyword | None:
    """``PUBLISH``, ``UNDO`` or ``CONTINUE`` (case-insensitive, in any of the project's words) when that is the
    whole message; None for an instruction ("undo the colour change and make it red" is an instruction)."""
    said = _normal(instruction)
    if not said:
        return None
    choices: tuple[tuple[Keyword, Iterable[str]], ...] = (
        ("publish", publish_words),
        ("undo", undo_words),
        ("continue", continue_words),
    )
    for word, words in choices:
        if said in {_normal(w) for w in words}:
            return word
    return None
