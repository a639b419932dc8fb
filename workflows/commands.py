"""Plain keywords a message can be instead of an instruction (pure)."""

from __future__ import annotations

import re

_STOP_RE = re.compile(r"^\s*(stop|cancel|halt)[\s.!]*$", re.IGNORECASE)


def is_stop(instruction: str) -> bool:
    """``STOP`` (or cancel/halt) alone: end the running command, keeping its work, and start nothing new."""
    return bool(_STOP_RE.match(instruction))
