"""The worker process: claim a project+user pair, serve its work queue, release it when idle.

Every command arrives with a task token and ends with exactly one SendTaskSuccess or SendTaskFailure; while
it runs, a heartbeat thread calls SendTaskHeartbeat and renews the ownership lease.

Its parts: ``pairs.py`` owns the pair (lease and work queue); ``scheduler.py`` decides what a newer command
does to the running one and what runs next; ``workflows/adapters/task_tokens.py`` answers tokens that may be gone;
``job.py`` runs one command (``live.py`` PUBLISH and UNDO). This module holds the threads that tie them:
serving, watching the queue while a command runs, and heartbeats.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from container.worker.attachments import s3_fetcher
from container.worker.cancel import Cancellation
from container.worker.editors import AgentConfig, Allowance
from container.worker.job import CONTINUE_PROMPT, run_command
from container.worker.live import LiveHistory, run_keyword
from container.worker.pairs import Pairs
from container.worker.preview import S3PreviewPublisher
from container.worker.progress import ProgressEvents
from container.worker.scheduler import Said, Scheduler
from container.worker.screenshot import find_browser
from workflows import names, replies
from workflows.adapters.aws import client
from workflows.adapters.eventlog import EventLog
from workflows.adapters.stores.ownership import DynamoOwnership
from workflows.adapters.stores.projects import DynamoProjects
from workflows.adapters.stores.spending import DynamoSpending, month_of
from workflows.adapters.task_tokens import TaskTokens
from workflows.commands import is_stop, keyword
from workflows.errors import (
    ProjectConfigError,
    WebOrdinaryError,
    WorkerAbandonedError,
    WorkerInterruptedError,
    WorkerReleasedError,
)
from workflows.events import ThreadState, fold
from workflows.models import (
    ClaimRequest,
    Command,
    CommandResult,
    NormalisedMessage,
    Project,
    WorkerReady,
    WorkItem,
)
from workflows.settings import Tables, WorkerSettings
from workflows.text import one_line

log = logging.getLogger("webordinary.worker")


def _ecs_worker_id() -> str:
    """On ECS the worker's id is its task's (names.worker_id_for_task), so the reaper can find what a stopped
    task held; the task ARN comes from the container metadata endpoint."""
    uri = os.environ.get("ECS_CONTAINER_METADATA_URI_V4")
    if not uri:
        return ""
    try:
        with urllib.request.urlopen(f"{uri}/task", timeout=2) as response:
            return names.worker_id_for_task(json.load(response)["TaskARN"])
    except (OSError, ValueError, KeyError):
        return ""


def _expired(request: ClaimRequest) -> bool:
    if not request.requestedAt or not request.timeoutSeconds:
        return False
    try:
        requested = datetime.fromisoformat(request.requestedAt.replace("Z", "+00:00"))
    except ValueError:
        return False
    return (datetime.now(UTC) - requested).total_seconds() > request.timeoutSeconds


# How much of a thread's history a fresh agent session is told: its latest changes, each instruction bounded.
HISTORY_CHANGES = 10
HISTORY_ASKED_CHARS = 300


class Worker:
    def __init__(self, settings: WorkerSettings, tables: Tables, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.tables = tables
        self.worker_id = settings.worker_id or _ecs_worker_id() or f"worker-{uuid.uuid4().hex[:12]}"
        self.stop = stop or threading.Event()
        self.sfn = client("stepfunctions")
        self.tokens = TaskTokens(self.sfn)
        self.sqs = client("sqs")
        self.ddb = client("dynamodb")
        self.spending = DynamoSpending(self.ddb, self.tables.spending)
        self.ownership = DynamoOwnership(self.ddb, tables.ownership)
        self.pairs = Pairs(self.sqs, self.ownership, self.tokens, self.worker_id, settings.work_dlq_arn)
        self.s3 = client("s3")
        # The scheduler decides; the worker's threads (serving, watching the queue, heartbeats) ask it under
        # this lock and do what it says.
        self._lock = threading.Lock()
        self._schedule = Scheduler()
        self._cancel = Cancellation()
        self._abandoned = False
        self._lost_ownership = threading.Event()
        self._folded: dict[str, ThreadState] = {}  # the running command's threads' states (_thread_state)

    # --- ownership ------------------------------------------------------------------------------------------

    def claim(self, project_id: str, user_id: str) -> WorkerReady:
        return self.pairs.claim(project_id, user_id)

    def renew(self, project_id: str, user_id: str) -> bool:
        return self.pairs.renew(project_id, user_id)

    def release(self, project_id: str, user_id: str) -> None:
        self.pairs.release(project_id, user_id)

    # --- answering tokens --------------------------------------------------------------------------------

    def _succeed(self, token: str, output: str) -> None:
        self.tokens.succeed(token, output)

    def _fail(self, token: str, exc: BaseException) -> None:
        self.tokens.fail(token, exc)

    # --- work ------------------------------------------------------------------------------------------------

    def _project(self, project_id: str) -> Project:
        project = DynamoProjects(self.ddb, self.tables.projects).get(project_id)
        if project is None:
            raise ProjectConfigError(f"project {project_id} is not configured")
        return project

    def _message(self, key: str) -> NormalisedMessage:
        body = self.s3.get_object(Bucket=self.settings.mail_bucket, Key=key)["Body"].read()
        return NormalisedMessage.model_validate_json(body)

    def _beat(self, project_id: str, user_id: str) -> None:
        """Heartbeat every token this worker holds (the running command and those waiting behind it) and
        renew the lease. A token the workflow gave up on is dropped; losing the lease stops the command."""
        with self._lock:
            held = self._schedule.held()
        for work in held:
            if not self.tokens.heartbeat(work.taskToken):
                log.warning("execution %s gave up on its command", work.command.executionName)
                self._forget(work)
        if not self.renew(project_id, user_id):
            log.warning("lost ownership of %s#%s", project_id, user_id)
            self._lost_ownership.set()
            self._cancel.cancel(Scheduler.lease_lost())

    def _forget(self, work: WorkItem) -> None:
        with self._lock:
            abandon = self._schedule.forget(work)
            if abandon is not None:
                self._cancel.cancel(abandon)
                self._abandoned = True

    def _heartbeats(self, project_id: str, user_id: str, done: threading.Event) -> None:
        while not done.wait(self.settings.heartbeat_seconds):
            try:
                self._beat(project_id, user_id)
            except Exception:  # a missed beat is survivable; the next one retries
                log.exception("heartbeat failed")

    def _holding(self, command: Command, token: str | None) -> None:
        self.pairs.note_running(command.projectId, command.userId, token, command.executionName)

    def _take(self, message: dict[str, Any], queue_url: str) -> WorkItem | None:
        # The workflow owns retries (its heartbeat timeout notices a lost worker), so the queue message is
        # consumed on receipt rather than redelivered behind the workflow's back.
        self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        try:
            work = WorkItem.model_validate_json(message["Body"])
        except ValueError:
            log.error("discarding malformed work item: %.200s", message["Body"])
            return None
        with self._lock:
            # SQS standard queues deliver at least once: the same queue message must not run twice. (Keyed by
            # the SQS message id, not the task token: a Retry of the workflow's state may send the same token.)
            if not self._schedule.first_delivery(message["MessageId"]):
                log.info("command %s delivered again; already taken", work.command.messageId)
                return None
        if not self._still_wanted(work):
            return None
        return work

    def _still_wanted(self, work: WorkItem) -> bool:
        """A command can reach us after its execution stopped waiting for it (it sat hidden behind a dead worker's
        poll, say, and the heartbeat timed out meanwhile); running it then would edit and push for nobody.
        The first heartbeat both checks that and restarts the execution's heartbeat clock."""
        try:
            if not self.tokens.heartbeat(work.taskToken):
                log.warning("execution %s no longer waits for its command; dropped", work.command.executionName)
                return False
        except ClientError:
            log.exception("first heartbeat failed; running the command anyway")
        return True

    def _watch(self, queue_url: str, done: threading.Event) -> None:
        """While a command runs, keep reading the queue: a newer message interrupts it (within about a second);
        a resumed command, and PUBLISH or UNDO (which act on what the running change will have made), wait
        their turn."""
        while not done.is_set():
            try:
                messages = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            except Exception:
                log.exception("watching the work queue failed")
                done.wait(1)
                continue
            for message in messages.get("Messages", []):
                work = self._take(message, queue_url)
                if work is None:
                    continue
                said = self._said(work)
                with self._lock:
                    arrival = self._schedule.arrived(work, said)
                if arrival.interrupt is not None:
                    self._cancel.cancel(arrival.interrupt)

    def _said(self, work: WorkItem) -> Said:
        """Whether a newer message is STOP, PUBLISH or UNDO rather than an instruction (its mail read once)."""
        try:
            instruction = self._message(work.command.messageKey).instruction
            if is_stop(instruction):
                return "stop"
            project = self._project(work.command.projectId)
        except Exception:
            return None
        return keyword(instruction, project.publishWords, project.undoWords, project.continueWords)

    def _next(self) -> WorkItem | None:
        with self._lock:
            return self._schedule.next()

    def handle(self, work: WorkItem, queue_url: str) -> None:
        command = work.command
        log.info("command %s for thread %s (attempt %s)", command.messageId, command.threadId, command.attempt)
        self._cancel = Cancellation()
        self._abandoned = False
        self._folded.clear()
        with self._lock:
            carried = self._schedule.start(work)
        done = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(queue_url, done), name="watch", daemon=True)
        watcher.start()
        message: NormalisedMessage | None = None
        self._holding(command, work.taskToken)
        try:
            message = self._message(command.messageKey)
            project = self._project(command.projectId) if not is_stop(message.instruction) else None
            said = (
                keyword(message.instruction, project.publishWords, project.undoWords, project.continueWords)
                if project
                else None
            )
            if project is not None and said == "continue":
                # CONTINUE carries on the change the allowance paused (with more allowed); with nothing paused
                # it is an instruction like any other.
                message, said = self._continuation(project, command, message), None
            if project is None:
                result = self._stop_result(command)
            elif said is not None:
                result = run_keyword(
                    said,
                    project,
                    command,
                    self._history(command.threadId),
                    workspace_root=Path(self.settings.workspace_root),
                    publisher=self._publisher(),
                    identity=(self.settings.git_author_name, self.settings.git_author_email),
                    git_token=self.settings.git_token,
                    cancel=self._cancel,
                )
            else:
                progress = ProgressEvents(EventLog(self.ddb, self.tables.events), command)
                try:
                    result = run_command(
                        project,
                        message,
                        command,
                        workspace_root=Path(self.settings.workspace_root),
                        publisher=self._publisher(),
                        identity=(self.settings.git_author_name, self.settings.git_author_email),
                        git_token=self.settings.git_token,
                        browser=find_browser(self.settings.browser),
                        agent=self._agent(project, command.threadId, progress),
                        cancel=self._cancel,
                        carried_over=carried,
                        fetch_attachment=s3_fetcher(self.s3, self.settings.mail_bucket),
                    )
                finally:
                    progress.close()
        except WorkerAbandonedError:
            log.warning("abandoned command %s: the workflow moved on", command.messageId)
            return
        except WorkerInterruptedError as exc:
            self._after_interruption(work, message.instruction if message else "", carried, exc)
            return
        except WebOrdinaryError as exc:
            log.info("command failed: %s: %s", type(exc).__name__, exc)
            self._fail(work.taskToken, exc)
            return
        except Exception as exc:
            log.error("command crashed:\n%s", traceback.format_exc())
            self._fail(work.taskToken, exc)
            return
        finally:
            done.set()
            watcher.join(timeout=5)
            with self._lock:
                self._schedule.finish()
            self._holding(command, None)
        if not self._abandoned:
            self._succeed(work.taskToken, result.model_dump_json())

    def _publisher(self) -> S3PreviewPublisher:
        return S3PreviewPublisher(
            self.settings.preview_bucket,
            self.settings.preview_origin or self.settings.preview_base_url,
            s3_client=self.s3,
            site_url=self.settings.site_origin,
        )

    def _continuation(self, project: Project, command: Command, message: NormalisedMessage) -> NormalisedMessage:
        """CONTINUE: the paused change's instruction, to carry on, with the month's allowance raised once for
        this message; the message as it is when nothing in the thread is paused."""
        state = self._thread_state(command.threadId)
        paused = [m for m in reversed(state.messages.values()) if m.kind == "paused" and m.messageKey]
        if not state.pausedMessage or not paused:
            return message
        original = ""
        for earlier in paused:  # a CONTINUE that paused again continues the same instruction
            instruction = self._message(earlier.messageKey).instruction
            words = (project.publishWords, project.undoWords, project.continueWords)
            if keyword(instruction, *words) != "continue":
                original = instruction
                break
        if not original:
            return message
        if project.monthlyBudgetUsd is not None:
            self.spending.allow_more(project.projectId, month_of(), project.continueUsd, command.messageId)
        return message.model_copy(update={"instruction": f"{CONTINUE_PROMPT}\n\n{original}"})

    def _agent(
        self, project: Project, thread_id: str, on_progress: Callable[[str], None] | None = None
    ) -> AgentConfig | None:
        """The coding agent's settings, resuming the thread's session (read from its events) when it has one,
        capped by what is left of the project's monthly allowance when it has a budget."""
        if project.editor.strip() != "claude-code":
            return None  # no event read on the other editors' path
        state = self._thread_state(thread_id)
        allowance: Allowance | None = None
        charge: Callable[[float], None] | None = None
        if project.monthlyBudgetUsd is not None:
            month = month_of()
            spent = self.spending.get(project.projectId, month)
            allowance = Allowance(
                budget_usd=spent.allowance(project.monthlyBudgetUsd),
                spent_usd=spent.spentUsd,
                continue_usd=project.continueUsd,
            )
            charge = partial(self.spending.charge, project.projectId, month)

        return AgentConfig(
            executable=self.settings.agent_executable,
            api_key=self.settings.agent_api_key,
            model=project.agentModel,
            max_turns=project.agentMaxTurns,
            resume_session=state.agentSessionId,
            budget_usd=allowance.left_usd if allowance is not None else None,
            allowance=allowance,
            charge=charge,
            on_progress=on_progress,
            history=self._earlier_changes(state),
        )

    def _earlier_changes(self, state: ThreadState) -> tuple[str, ...]:
        """The thread's earlier changes for a fresh agent session: what each asked and what it did (the
        latest few; the instruction read from the stored mail, the outcome from the events)."""
        done = [m for m in state.messages.values() if m.kind == "changed" and m.status == "succeeded" and m.summary]
        earlier = []
        for change in done[-HISTORY_CHANGES:]:
            asked = ""
            if change.messageKey:
                try:
                    asked = one_line(self._message(change.messageKey).instruction, HISTORY_ASKED_CHARS + 1)
                except Exception:
                    log.warning("could not read the instruction of %s", change.messageId, exc_info=True)
            asked = asked if len(asked) <= HISTORY_ASKED_CHARS else asked[: HISTORY_ASKED_CHARS - 1] + "…"
            earlier.append(f"Asked: {asked} Done: {change.summary}" if asked else change.summary)
        return tuple(earlier)

    def _thread_state(self, thread_id: str) -> ThreadState:
        """The thread's state from its events, read once per command (CONTINUE asks twice: what paused, and the
        agent's session); nothing of this thread is recorded while its command is being set up."""
        if thread_id not in self._folded:
            self._folded[thread_id] = fold(thread_id, EventLog(self.ddb, self.tables.events).read(thread_id))
        return self._folded[thread_id]

    def _history(self, thread_id: str) -> LiveHistory:
        """What PUBLISH and UNDO need from the thread's events: the change the owner saw, the last publish."""
        state = self._thread_state(thread_id)
        return LiveHistory(shown_commit=state.shownCommit, last_publish=state.lastPublish)

    def _after_interruption(self, work: WorkItem, instruction: str, carried: str, exc: WorkerInterruptedError) -> None:
        log.info("command %s interrupted: %s", work.command.messageId, exc.detail.text)
        with self._lock:
            self._schedule.interrupted(instruction, carried, exc.detail)
        self._fail(work.taskToken, exc)

    def _stop_result(self, command: Command) -> CommandResult:
        with self._lock:
            stopped = self._schedule.take_stopped()
        if stopped is None:
            summary = replies.NOTHING_TO_STOP
            commit = ""
        else:
            instruction, detail = stopped
            summary = replies.stop_summary(instruction, detail.text)
            commit = detail.wipCommit
        return CommandResult(
            commit=commit, branch=command.branch, filesChanged=[], previewUrl="", summary=summary, kind="stopped"
        )

    def serve(self, project_id: str, user_id: str, queue_url: str) -> None:
        """Take commands until idle for ``idle_seconds`` (or told to stop), then release the pair."""
        last_work = time.monotonic()
        done = threading.Event()
        beats = threading.Thread(target=self._heartbeats, args=(project_id, user_id, done), daemon=True)
        beats.start()
        try:
            while not self.stop.is_set() and not self._lost_ownership.is_set():
                work = self._next()
                if work is None:
                    idle_left = self.settings.idle_seconds - (time.monotonic() - last_work)
                    if idle_left <= 0:
                        break
                    if not self.renew(project_id, user_id):
                        log.warning("lost ownership of %s#%s", project_id, user_id)
                        return
                    wait = max(1, min(self.settings.poll_seconds, int(idle_left + 0.999)))
                    for message in self.sqs.receive_message(
                        QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=wait
                    ).get("Messages", []):
                        work = self._take(message, queue_url)
                if work is not None:
                    self.handle(work, queue_url)
                    last_work = time.monotonic()
        finally:
            done.set()
            beats.join(timeout=5)
            # Commands that were waiting here go back to their executions, which claim a worker again.
            with self._lock:
                waiting = self._schedule.drain()
            for work in waiting:
                self._fail(work.taskToken, WorkerReleasedError("the worker stopped before taking the command"))
            if not self._lost_ownership.is_set():
                self.release(project_id, user_id)
            self._lost_ownership.clear()

    # --- entry points ----------------------------------------------------------------------------------

    def run_spawned(self) -> None:
        """Started by the workflow's ecs:runTask with a task token: claim, answer, serve, exit."""
        s = self.settings
        ready = self.claim(s.claim_project_id, s.claim_user_id).model_copy(update={"via": "spawned"})
        self._succeed(s.task_token, ready.model_dump_json())
        if ready.claimed:
            self.serve(s.claim_project_id, s.claim_user_id, ready.queueUrl)

    def run_warm(self) -> None:
        """Member of the warm pool: answer claim requests one pair at a time."""
        while not self.stop.is_set():
            messages = self.sqs.receive_message(
                QueueUrl=self.settings.claim_queue_url,
                MaxNumberOfMessages=1,
                WaitTimeSeconds=self.settings.poll_seconds,
            ).get("Messages", [])
            for message in messages:
                self.sqs.delete_message(QueueUrl=self.settings.claim_queue_url, ReceiptHandle=message["ReceiptHandle"])
                try:
                    request = ClaimRequest.model_validate_json(message["Body"])
                except ValueError:
                    log.error("discarding malformed claim request: %.200s", message["Body"])
                    continue
                if _expired(request):
                    continue  # the execution stopped waiting and spawned a worker instead
                ready = self.claim(request.projectId, request.userId)
                self._succeed(request.taskToken, ready.model_dump_json())
                if ready.claimed:
                    self.serve(request.projectId, request.userId, ready.queueUrl)
                    if self.settings.exit_when_idle:
                        return
