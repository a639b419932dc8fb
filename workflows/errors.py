"""Named failures. A class name is the error name the workflow sees (``SendTaskFailure(error=...)``) and what
the ASL's ``Retry``/``Catch`` ``ErrorEquals`` lists; :func:`asl_error_name` is the one place that maps them.

``TransientError`` subclasses are worth retrying; ``PermanentError`` subclasses are not: the user is told why.
"""

from __future__ import annotations


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


# --- worker: the command failed for a reason the user can act on ---------------------------------------


class InstructionError(PermanentError):
    """The editor could not understand the instruction."""


class NothingToChangeError(PermanentError):
    """The editor understood the instruction but nothing in the site matched."""


class EditorFailedError(PermanentError):
    """The agent or command exited unsuccessfully."""


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


class WorkerCrashedError(TransientError):
    """An unexpected exception inside the worker; details are in its log."""


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
