"""Named failures. A class name is the error name the workflow sees (``SendTaskFailure(error=...)``) and what
the ASL's ``Retry``/``Catch`` ``ErrorEquals`` lists; :func:`asl_error_name` is the one place that maps them.
:data:`COMMAND_ERROR_ROUTES` and :data:`RAISED_BY_WORKFLOW` (at the end) say where the workflow sends each
error and which ones it raises itself; ``tests/asl/test_error_table.py`` holds the ASL to them.

``TransientError`` subclasses are worth retrying; ``PermanentError`` subclasses are not: the user is told why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflows.models import InterruptionDetail


class WebOrdinaryError(Exception):
    """Base of every error we raise on purpose."""


class PermanentError(WebOrdinaryError):
    """Retrying will not help; the user gets a plain reason."""


class TransientError(WebOrdinaryError):
    """Something outside us failed; the workflow retries with backoff."""


# --- intake (the inbound handler records these as rejections; no execution starts) ---------------------


class RejectedMailError(PermanentError):
    """Base of intake rejections. ``reason`` is a short machine-readable code."""

    reason = "rejected"

    def __init__(self, message: str, project_id: str = "") -> None:
        super().__init__(message)
        self.project_id = project_id


class UnknownProjectError(RejectedMailError):
    reason = "unknown-project"


class SenderNotAllowedError(RejectedMailError):
    reason = "sender-not-allowed"


class MalformedMailError(RejectedMailError):
    reason = "malformed-mail"


class EmptyInstructionError(RejectedMailError):
    reason = "empty-instruction"


class NoSenderError(RejectedMailError):
    """No usable From address: there is nobody to act for and nobody to answer."""

    reason = "no-sender"


class SpamError(RejectedMailError):
    """SES's spam verdict was not PASS (GRAY and PROCESSING_FAILED count as not PASS)."""

    reason = "spam"


class VirusError(RejectedMailError):
    """SES's virus verdict was not PASS."""

    reason = "virus"


class AuthFailedError(RejectedMailError):
    """DMARC failed, or neither SPF nor DKIM vouched for the sender's domain: the From may be forged."""

    reason = "auth-failed"


class AutoReplyError(RejectedMailError):
    """An auto-reply, out-of-office or bulk/list mail: never work, never answer (no mail loops)."""

    reason = "auto-reply"


class BounceError(RejectedMailError):
    """A delivery status notification (bounce): never work, never answer."""

    reason = "bounce"


class MailLoopError(RejectedMailError):
    """Mail that we (or another WebOrdinary address) sent coming back in: answering would loop."""

    reason = "loop"


class TooLargeError(RejectedMailError):
    """The raw message is larger than intake reads."""

    reason = "too-large"


class InstructionTooLongError(RejectedMailError):
    """The new text of the mail is longer than an instruction may be."""

    reason = "instruction-too-long"


class TooManyAttachmentsError(RejectedMailError):
    reason = "too-many-attachments"


class AttachmentTooLargeError(RejectedMailError):
    """One attachment, or all of them together, exceed the size limits."""

    reason = "attachment-too-large"


# --- worker: the command failed for a reason the user can act on ---------------------------------------


class InstructionError(PermanentError):
    """The editor could not understand the instruction."""


class NothingToChangeError(PermanentError):
    """The editor understood the instruction but nothing in the site matched."""


class EditorFailedError(PermanentError):
    """The agent or command exited unsuccessfully."""


class AgentTurnLimitError(EditorFailedError):
    """The coding agent used all the turns the project allows before it finished."""


class AgentBudgetError(EditorFailedError):
    """The coding agent reached the spending limit it was given for this change."""


class AgentApiError(EditorFailedError):
    """The coding agent could not reach its model, or the model's service answered with an error."""


class AgentCrashedError(EditorFailedError):
    """The coding agent stopped without a result: it crashed or was killed."""


class BuildFailedError(PermanentError):
    """The site's build command failed; the edit is committed but not published."""


class RepositoryError(PermanentError):
    """The repository could not be cloned or its branch could not be prepared."""


class ProjectConfigError(PermanentError):
    """The project's configuration is missing or invalid."""


# --- worker: infrastructure hiccups ---------------------------------------------------------------------


class PushFailedError(TransientError):
    """Pushing the thread branch failed."""


class PreviewUploadError(TransientError):
    """Uploading the preview failed."""


class WorkerReleasedError(TransientError):
    """The worker gave up ownership of the pair before it could take this command; claim again."""


class WorkerStoppedError(TransientError):
    """The worker's task stopped (crashed, killed, out of memory) while it held the command; sent by the reaper
    the moment ECS reports the task stopped, so the workflow need not wait for a heartbeat timeout."""


class WorkerCrashedError(TransientError):
    """An unexpected exception inside the worker; details are in its log."""


class WorkerInterruptedError(WebOrdinaryError):
    """A newer message for the same project+user interrupted the command. Neither transient nor permanent:
    the workflow's Interrupted branch decides. ``detail`` says who interrupted and where the work is; the
    task failure's cause is its JSON."""

    def __init__(self, detail: InterruptionDetail) -> None:
        super().__init__(detail.model_dump_json())
        self.detail = detail

    @classmethod
    def describe(
        cls,
        *,
        interrupted_by: str,
        by_thread: str,
        same_thread: bool,
        stop: bool,
        wip_commit: str | None,
        pushed: bool,
        branch: str,
    ) -> WorkerInterruptedError:
        from workflows.models import InterruptionDetail
        from workflows.replies import interruption_text  # the words live there; it imports this module

        return cls(
            InterruptionDetail(
                interruptedBy=interrupted_by,
                byThread=by_thread,
                sameThread=same_thread,
                stop=stop,
                resume=not same_thread and not stop,
                wipCommit=wip_commit or "",
                pushed=pushed,
                branch=branch,
                text=interruption_text(stop=stop, same_thread=same_thread, saved=bool(wip_commit)),
            )
        )


class WorkerAbandonedError(WebOrdinaryError):
    """The worker lost its lease or the workflow gave up on the command; never reported to the workflow."""


class WorkDeadLetteredError(WebOrdinaryError):
    """The command's queue message went to the work DLQ (no worker could take it); the DLQ consumer fails the
    waiting token with this so the execution takes its DeadLettered branch at once instead of timing out."""


def asl_error_name(exc: BaseException) -> str:
    """The error name sent with SendTaskFailure. Unknown exceptions collapse to WorkerCrashedError so the ASL
    never sees a Python-internal name it cannot match."""
    if isinstance(exc, WebOrdinaryError):
        return type(exc).__name__
    return WorkerCrashedError.__name__


def describe(exc: BaseException, limit: int = 2000) -> str:
    """The cause sent with SendTaskFailure: plain words, bounded (Step Functions caps causes at 32 KiB)."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- raised by the workflow itself: its Fail states, and the Pass that names a thread conflict ----------


class ThreadConflictError(PermanentError):
    """The message names a thread that belongs to another project or branch (``Resolve thread``'s condition);
    the thread is not joined and nothing runs."""


class CommandFailedError(WebOrdinaryError):
    """How an execution ends when its command failed for good (the owner was told why): ``Command failed``."""


class CommandDeadLetteredError(WebOrdinaryError):
    """How an execution ends when its command was dead-lettered (kept for an operator): ``Dead-lettered``."""


class ReplyFailedError(WebOrdinaryError):
    """How an execution ends when its reply could not be sent after retries: ``Reply failed``."""


class EventLogUnavailableError(WebOrdinaryError):
    """How an execution ends when an event could not be recorded after retries: ``Event log unavailable``."""


# --- how the message workflow routes each error: the table tests/asl/test_error_table.py checks ----------

# Error names that are AWS's own (Step Functions' and its integrations'), not ours: they keep their names.
# "DynamoDB." is the optimised integration's prefix, "DynamoDb." the aws-sdk one's (as AWS names them).
AWS_ERROR_PREFIXES = ("States.", "DynamoDB.", "DynamoDb.", "ECS.", "SesV2.", "SQS.")


@dataclass(frozen=True)
class Route:
    """Where ``Run command`` sends an error a command's token is failed with: its ``Catch`` target, and whether
    its ``Retry`` tries the same worker again first (backoff and jitter)."""

    error: type[WebOrdinaryError]
    branch: str
    retried: bool = False


COMMAND_ERROR_ROUTES: tuple[Route, ...] = (
    # Transient: the command is worth another attempt.
    Route(PushFailedError, "Record CommandRetried", retried=True),
    Route(PreviewUploadError, "Record CommandRetried", retried=True),
    Route(WorkerCrashedError, "Record CommandRetried"),
    # The worker is gone (the reaper, a released pair): free it and claim again.
    Route(WorkerReleasedError, "Record WorkerLost"),
    Route(WorkerStoppedError, "Record WorkerLost"),
    # A newer message took over, paused or stopped the command.
    Route(WorkerInterruptedError, "Record CommandInterrupted"),
    # No worker could take the command's queue message.
    Route(WorkDeadLetteredError, "Dead-letter the command"),
    # Permanent: the owner is told why; nothing is retried.
    Route(InstructionError, "Record CommandFailed"),
    Route(NothingToChangeError, "Record CommandFailed"),
    Route(EditorFailedError, "Record CommandFailed"),
    Route(AgentTurnLimitError, "Record CommandFailed"),
    Route(AgentBudgetError, "Record CommandFailed"),
    Route(AgentApiError, "Record CommandFailed"),
    Route(AgentCrashedError, "Record CommandFailed"),
    Route(BuildFailedError, "Record CommandFailed"),
    Route(RepositoryError, "Record CommandFailed"),
    Route(ProjectConfigError, "Record CommandFailed"),
)

# Errors the workflow raises itself, by the state that raises them.
RAISED_BY_WORKFLOW: dict[str, type[WebOrdinaryError]] = {
    "Thread conflict": ThreadConflictError,
    "Command failed": CommandFailedError,
    "Dead-lettered": CommandDeadLetteredError,
    "Reply failed": ReplyFailedError,
    "Event log unavailable": EventLogUnavailableError,
}
