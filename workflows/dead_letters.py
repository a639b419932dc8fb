"""Dead letters: work queue messages no worker could take, and commands the workflow gave up on."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from workflows.adapters.task_tokens import TaskTokens
from workflows.errors import WorkDeadLetteredError
from workflows.models import ExecutionInput, WorkItem

log = logging.getLogger("webordinary.dead_letters")


def fail_waiting_execution(stepfunctions: Any, body: str, receive_count: int = 0) -> bool:
    """A work item reached the work DLQ: fail its task token now, so the execution takes its DeadLettered
    branch instead of waiting for its heartbeat or task timeout. False when the body is not a work item or
    the execution has already moved on."""
    try:
        item = WorkItem.model_validate_json(body)
    except ValueError:
        log.error("dead letter is not a work item: %.200s", body)
        return False
    error = WorkDeadLetteredError(
        f"No worker took the command for thread {item.command.threadId} "
        f"(the queue gave up after {receive_count or 'several'} deliveries)."
    )
    return TaskTokens(stepfunctions).fail(item.taskToken, error)


def redrive_name(execution: str, redrive: int) -> str:
    """The new execution's name: the original's plus ``-r{n}``, within Step Functions' 80 characters."""
    base = re.sub(r"-r\d+$", "", execution)
    suffix = f"-r{redrive}"
    return base[: 80 - len(suffix)] + suffix


def redrive_input(dead_letter: dict[str, Any]) -> tuple[ExecutionInput, str]:
    """From a dead-lettered context (see the ASL's "Dead-letter the command" state): the input and name of the
    execution that replays it."""
    original = dead_letter["input"]
    original = json.loads(original) if isinstance(original, str) else original
    previous = ExecutionInput.model_validate(original)
    replay = previous.model_copy(update={"redrive": previous.redrive + 1})
    return replay, redrive_name(str(dead_letter["execution"]), replay.redrive)
