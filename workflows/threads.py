"""Thread identity rules (pure).

A thread id is 8 characters from a fixed 30-letter alphabet with no look-alikes (no 0/o, 1/l/i, u). A new
thread's id is derived from the SES message id and the project, so delivering the same mail twice yields the
same thread (and therefore the same execution name). Branches are ``thread-{id}``.
"""

from __future__ import annotations

import hashlib
import re

ALPHABET = "23456789abcdefghjkmnpqrstvwxyz"
THREAD_ID_LENGTH = 8
THREAD_ID_RE = re.compile(rf"^[{ALPHABET}]{{{THREAD_ID_LENGTH}}}$")
BRANCH_PREFIX = "thread-"


def is_thread_id(value: str) -> bool:
    return bool(THREAD_ID_RE.fullmatch(value))


def new_thread_id(project_id: str, seed: str) -> str:
    """A fresh id, stable for the same (project, seed): the seed is the SES message id."""
    digest = int.from_bytes(hashlib.sha256(f"{project_id}\0{seed}".encode()).digest(), "big")
    chars = []
    for _ in range(THREAD_ID_LENGTH):
        digest, index = divmod(digest, len(ALPHABET))
        chars.append(ALPHABET[index])
    return "".join(chars)


def branch_for(thread_id: str) -> str:
    if not is_thread_id(thread_id):
        raise ValueError(f"not a thread id: {thread_id!r}")
    return f"{BRANCH_PREFIX}{thread_id}"


def plus_address(project_id: str, thread_id: str, domain: str) -> str:
    return f"{project_id}+{thread_id}@{domain}"


def split_recipient(address: str, domain: str) -> tuple[str, str | None] | None:
    """``project[+thread]@domain`` -> (project, thread or None); None if the address is not ours.

    A plus part that is not a well-formed thread id is ignored rather than trusted.
    """
    local, at, host = address.strip().lower().rpartition("@")
    if not at or host != domain.lower() or not local:
        return None
    project, plus, tag = local.partition("+")
    thread = tag if plus and is_thread_id(tag) else None
    return project, thread


def execution_name(thread_id: str, ses_message_id: str) -> str:
    """Deterministic, at most 80 characters of [A-Za-z0-9-_], carrying the thread and the message."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", ses_message_id)
    name = f"{thread_id}-{safe}"
    if len(name) > 80:
        digest = hashlib.sha256(ses_message_id.encode()).hexdigest()[:16]
        name = f"{thread_id}-{safe[:54]}-{digest}"
    return name
