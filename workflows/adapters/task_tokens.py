"""Answering a Step Functions task token that may be gone: the one place that knows how.

A token stops being accepted when its execution stopped waiting (a timeout, a heartbeat timeout, a redrive
that moved on, a stopped execution). Whoever answers it then — the worker with its result, a heartbeat, the
dead-letter consumer, the reaper — has nothing left to tell: the answer is dropped (and said so), never an
error. Any other failure to answer is raised.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from workflows.errors import asl_error_name, describe

log = logging.getLogger(__name__)

# What Step Functions answers for a token it no longer waits for.
TOKEN_GONE = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


def token_gone(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in TOKEN_GONE


class TaskTokens:
    """Step Functions' SendTask* calls; each returns False when the token is gone instead of raising."""

    def __init__(self, stepfunctions: Any) -> None:
        self._sfn = stepfunctions

    def succeed(self, token: str, output: str) -> bool:
        return self._answer("SendTaskSuccess", self._sfn.send_task_success, taskToken=token, output=output)

    def fail(self, token: str, exc: BaseException, cause: str | None = None) -> bool:
        """The error's ASL name (``errors.asl_error_name``) and its cause (its own words by default)."""
        return self._answer(
            "SendTaskFailure",
            self._sfn.send_task_failure,
            taskToken=token,
            error=asl_error_name(exc),
            cause=describe(exc) if cause is None else cause,
        )

    def heartbeat(self, token: str) -> bool:
        return self._answer("SendTaskHeartbeat", self._sfn.send_task_heartbeat, taskToken=token)

    @staticmethod
    def _answer(what: str, call: Any, **kwargs: str) -> bool:
        try:
            call(**kwargs)
        except ClientError as exc:
            if not token_gone(exc):
                raise
            log.warning("%s: the task token is no longer accepted (%s)", what, exc.response["Error"]["Code"])
            return False
        return True
