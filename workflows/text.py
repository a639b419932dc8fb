"""Small text shapes shared by mail, replies and the worker (pure)."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def one_line(value: str, limit: int | None = None) -> str:
    """One line: no control characters (nothing from inbound mail can start a header of its own), runs of
    whitespace as one space; cut at ``limit`` characters when given."""
    flat = " ".join(_CONTROL.sub(" ", value).split())
    return flat if limit is None else flat[:limit]


def bounded(text: str, limit: int) -> str:
    """``text``, or its first ``limit - 1`` characters and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
