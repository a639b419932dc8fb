"""What a worker runs next, and what a newer message does to the command running (pure: no threads, no AWS).

A worker serves one project+user pair. Its commands come from the pair's work queue one at a time; while one
runs, the queue is still read, and each newer command is decided here:

- an instruction (or STOP) **interrupts** the running command and runs next, before anything else waiting;
  the interrupted command's instruction is carried over to it when it is of the same thread;
- a resumed command (of another thread, which an earlier message interrupted), PUBLISH, UNDO and CONTINUE
  **wait** their turn: they act on what the running change will have made, so they never interrupt it;
- a command whose execution stopped waiting for it is **forgotten**, and abandoned if it is running.

The worker (``runtime.py``) holds one :class:`Scheduler`, calls it under its own lock from its threads, and
does what it decides: cancel the running command, answer tokens, run the next.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from container.worker.cancel import Interruption
from workflows.models import InterruptionDetail, WorkItem

Said = Literal["stop", "publish", "undo", "continue"] | None

# How many queue messages are remembered as taken: SQS delivers at least once, so a redelivery is recognised.
REMEMBERED_MESSAGES = 1000
# Why a command stops without a newer message: the workflow stopped waiting for it, or the pair's lease is gone.
TOKEN_EXPIRED = "token-expired"
LEASE_LOST = "lease-lost"


@dataclass(frozen=True)
class Arrival:
    """What a newer command does: where it waits, and what the running command is told (None: nothing)."""

    queue: Literal["urgent", "later"]
    interrupt: Interruption | None


@dataclass
class Scheduler:
    current: WorkItem | None = None
    urgent: deque[WorkItem] = field(default_factory=deque)  # newer messages: they interrupted the running one
    later: deque[WorkItem] = field(default_factory=deque)  # resumed commands, PUBLISH, UNDO, CONTINUE
    # message id -> instruction of the same-thread command it interrupted (which it carries on)
    carried: dict[str, str] = field(default_factory=dict)
    stopped: tuple[str, InterruptionDetail] | None = None  # what the last STOP interrupted, for its reply
    _taken: deque[str] = field(default_factory=lambda: deque(maxlen=REMEMBERED_MESSAGES))

    # --- receiving ----------------------------------------------------------------------------------------

    def first_delivery(self, queue_message_id: str) -> bool:
        """Whether this queue message is new (keyed by the SQS message id, not the task token: a Retry of
        the workflow's state may send the same token again)."""
        if queue_message_id in self._taken:
            return False
        self._taken.append(queue_message_id)
        return True

    def arrived(self, work: WorkItem, said: Said) -> Arrival:
        """A command arrived while ``current`` runs (or before the next is taken)."""
        if work.command.resume or said in ("publish", "undo", "continue"):
            self.later.append(work)
            return Arrival("later", None)
        self.urgent.append(work)
        if self.current is None:
            return Arrival("urgent", None)
        interruption = Interruption(
            by_message=work.command.messageId, by_thread=work.command.threadId, stop=said == "stop"
        )
        return Arrival("urgent", interruption)

    # --- running ------------------------------------------------------------------------------------------

    def next(self) -> WorkItem | None:
        """The command to run next: the newest interrupting ones first, in arrival order, then those waiting."""
        if self.urgent:
            return self.urgent.popleft()
        if self.later:
            return self.later.popleft()
        return None

    def start(self, work: WorkItem) -> str:
        """``work`` runs now; what it carries over from the same-thread command it interrupted ("" if none)."""
        self.current = work
        return self.carried.pop(work.command.messageId, "")

    def finish(self) -> None:
        self.current = None

    def held(self) -> list[WorkItem]:
        """Every command this worker holds a token for: the running one and those waiting."""
        return [work for work in (self.current, *self.urgent, *self.later) if work is not None]

    def forget(self, work: WorkItem) -> Interruption | None:
        """``work``'s execution stopped waiting for it: drop it; if it is running, abandon it (returned)."""
        for queue in (self.urgent, self.later):
            if work in queue:
                queue.remove(work)
        if work is self.current:
            return Interruption(by_message=TOKEN_EXPIRED, by_thread="", abandon=True)
        return None

    @staticmethod
    def lease_lost() -> Interruption:
        """The pair is no longer ours: another worker may be in the checkout, so the command touches nothing."""
        return Interruption(by_message=LEASE_LOST, by_thread="", abandon=True)

    def drain(self) -> list[WorkItem]:
        """Everything still waiting, taken out (the worker is stopping: each goes back to its execution)."""
        waiting = [*self.urgent, *self.later]
        self.urgent.clear()
        self.later.clear()
        return waiting

    # --- after an interruption ------------------------------------------------------------------------------

    def interrupted(self, instruction: str, carried: str, detail: InterruptionDetail) -> None:
        """The running command stopped for a newer one: a STOP remembers what it stopped (for its reply); a
        newer instruction of the same thread carries on this one's (and what this one had carried over)."""
        if detail.stop:
            self.stopped = (instruction, detail)
        elif detail.sameThread:
            self.carried[detail.interruptedBy] = "\n".join(filter(None, [instruction, carried]))

    def take_stopped(self) -> tuple[str, InterruptionDetail] | None:
        """What the last STOP interrupted, once (None when it found nothing running)."""
        stopped, self.stopped = self.stopped, None
        return stopped
