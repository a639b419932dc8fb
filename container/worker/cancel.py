"""Cooperative cancellation of the running command, requested by the worker when a newer message arrives."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Interruption:
    """Why the running command must stop: the newer message that arrived for the same project+user."""

    by_message: str
    by_thread: str
    stop: bool = False  # the newer message is the STOP keyword: end the command, start nothing new
    # The workflow stopped waiting for this worker (its lease or token is gone): another worker may already
    # be in this checkout, so touch nothing, save nothing, report nothing.
    abandon: bool = False


class CommandCancelledError(Exception):
    """Raised inside the job when its command was interrupted; the job saves partial work and re-raises it as
    the WorkerInterruptedError the workflow sees."""

    def __init__(self, interruption: Interruption) -> None:
        super().__init__(f"interrupted by {interruption.by_message}")
        self.interruption = interruption


class Cancellation:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._interruption: Interruption | None = None

    def cancel(self, interruption: Interruption) -> None:
        if not self._event.is_set():
            self._interruption = interruption
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    @property
    def interruption(self) -> Interruption | None:
        return self._interruption

    def check(self) -> None:
        if self._interruption is not None and self._event.is_set():
            raise CommandCancelledError(self._interruption)
