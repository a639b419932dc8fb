"""The coding agent's progress, recorded as it happens: one ``AgentProgress`` event per new step on the
thread's stream, so ``webordinary events`` (and later a chat channel) shows what the agent is doing while it
works, not only after it finished.

Steps arrive on the thread that reads the agent's output; the writes happen on a thread of their own, so a
slow or failing event log never stalls the agent's pipe and never fails the command (progress is a courtesy;
the command's result is what counts). Steps are already coalesced by the transcript; here they are bounded
per run.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid

from workflows.adapters.eventlog import EventStore
from workflows.events import AgentProgress, EventType
from workflows.models import Command

log = logging.getLogger(__name__)

MAX_STEPS_RECORDED = 30  # per agent run; the result's own progress list keeps up to 50


class ProgressEvents:
    """Call it with each step; :meth:`close` when the command ends (waits briefly for the last writes)."""

    def __init__(self, events: EventStore, command: Command, limit: int = MAX_STEPS_RECORDED) -> None:
        self._events = events
        self._command = command
        self._limit = limit
        # Unique per run, so a retried or resumed command's steps never collide with an earlier run's ids.
        self._run = uuid.uuid4().hex[:8]
        self._count = 0
        self._queue: queue.Queue[AgentProgress | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, step: str) -> None:
        with self._lock:
            if self._count >= self._limit:
                return
            self._count += 1
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name="progress", daemon=True)
                self._writer.start()
            self._queue.put(AgentProgress(step=step, n=self._count))

    def close(self, timeout: float = 2.0) -> None:
        with self._lock:
            writer = self._writer
        if writer is not None:
            self._queue.put(None)
            writer.join(timeout=timeout)

    def _write(self) -> None:
        command = self._command
        while (step := self._queue.get()) is not None:
            try:
                self._events.append(
                    command.threadId,
                    f"{command.messageId}#{EventType.AGENT_PROGRESS}#{command.attempt}.{self._run}.{step.n:03d}",
                    EventType.AGENT_PROGRESS,
                    step.model_dump(),
                    execution=command.executionName,
                )
            except Exception:
                log.warning("could not record the agent's progress step %r", step.step, exc_info=True)
