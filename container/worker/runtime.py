"""The worker process: claim a project+user pair, serve its work queue, release it when idle.

Every command arrives with a task token and ends with exactly one SendTaskSuccess or SendTaskFailure; while
it runs, a heartbeat thread calls SendTaskHeartbeat and renews the ownership lease.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from botocore.exceptions import ClientError

from container.worker.job import run_command
from container.worker.preview import S3PreviewPublisher
from workflows import names
from workflows.aws import client
from workflows.errors import (
    ProjectConfigError,
    WebOrdinaryError,
    WorkerReleasedError,
    asl_error_name,
    describe,
)
from workflows.models import ClaimRequest, NormalisedMessage, Project, WorkerReady, WorkItem
from workflows.settings import Tables, WorkerSettings

log = logging.getLogger("webordinary.worker")
LEASE_SECONDS = 900
_TOKEN_GONE = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


class Worker:
    def __init__(self, settings: WorkerSettings, tables: Tables, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.tables = tables
        self.worker_id = settings.worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self.stop = stop or threading.Event()
        self.sfn = client("stepfunctions")
        self.sqs = client("sqs")
        self.ddb = client("dynamodb")
        self.s3 = client("s3")

    # --- ownership ------------------------------------------------------------------------------------------

    def _queue_url(self, project_id: str, user_id: str) -> str:
        attributes = {"VisibilityTimeout": "60", "MessageRetentionPeriod": "86400"}
        if self.settings.work_dlq_arn:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": self.settings.work_dlq_arn,
                    "maxReceiveCount": str(names.WORK_QUEUE_MAX_RECEIVE_COUNT),
                }
            )
        url: str = self.sqs.create_queue(QueueName=names.work_queue_name(project_id, user_id), Attributes=attributes)[
            "QueueUrl"
        ]
        return url

    def claim(self, project_id: str, user_id: str) -> WorkerReady:
        """Own the pair, unless a live owner already does: then answer with that owner's queue."""
        queue_url = self._queue_url(project_id, user_id)
        key = names.owner_key(project_id, user_id)
        now = int(time.time())
        try:
            self.ddb.put_item(
                TableName=self.tables.ownership,
                Item={
                    "ownerKey": {"S": key},
                    "projectId": {"S": project_id},
                    "userId": {"S": user_id},
                    "workerId": {"S": self.worker_id},
                    "queueUrl": {"S": queue_url},
                    "claimedAt": {"N": str(now)},
                    "expiresAt": {"N": str(now + LEASE_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(ownerKey) OR workerId = :me OR expiresAt < :now",
                ExpressionAttributeValues={":me": {"S": self.worker_id}, ":now": {"N": str(now)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            owner = self.ddb.get_item(
                TableName=self.tables.ownership, Key={"ownerKey": {"S": key}}, ConsistentRead=True
            )
            item = owner.get("Item", {})
            return WorkerReady(
                workerId=item.get("workerId", {}).get("S", ""),
                queueUrl=item.get("queueUrl", {}).get("S", queue_url),
                claimed=False,
            )
        return WorkerReady(workerId=self.worker_id, queueUrl=queue_url, claimed=True)

    def renew(self, project_id: str, user_id: str) -> bool:
        try:
            self.ddb.update_item(
                TableName=self.tables.ownership,
                Key={"ownerKey": {"S": names.owner_key(project_id, user_id)}},
                UpdateExpression="SET expiresAt = :exp",
                ConditionExpression="workerId = :me",
                ExpressionAttributeValues={
                    ":me": {"S": self.worker_id},
                    ":exp": {"N": str(int(time.time()) + LEASE_SECONDS)},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, project_id: str, user_id: str) -> None:
        """Give the pair up (only if we still own it), then fail anything that slipped into the queue
        meanwhile so its execution claims again instead of waiting for a heartbeat timeout."""
        try:
            self.ddb.delete_item(
                TableName=self.tables.ownership,
                Key={"ownerKey": {"S": names.owner_key(project_id, user_id)}},
                ConditionExpression="workerId = :me",
                ExpressionAttributeValues={":me": {"S": self.worker_id}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        queue_url = self._queue_url(project_id, user_id)
        for message in self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            try:
                token = WorkItem.model_validate_json(message["Body"]).taskToken
            except ValueError:
                continue
            self._fail(token, WorkerReleasedError("the worker released this project before taking the command"))

    # --- answering tokens --------------------------------------------------------------------------------

    def _succeed(self, token: str, output: str) -> None:
        try:
            self.sfn.send_task_success(taskToken=token, output=output)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in _TOKEN_GONE:
                raise
            log.warning("task token no longer accepted: %s", exc.response["Error"]["Code"])

    def _fail(self, token: str, exc: BaseException) -> None:
        try:
            self.sfn.send_task_failure(taskToken=token, error=asl_error_name(exc), cause=describe(exc))
        except ClientError as err:
            if err.response["Error"]["Code"] not in _TOKEN_GONE:
                raise
            log.warning("task token no longer accepted: %s", err.response["Error"]["Code"])

    @contextmanager
    def _heartbeat(self, token: str, project_id: str, user_id: str) -> Iterator[None]:
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.settings.heartbeat_seconds):
                try:
                    self.sfn.send_task_heartbeat(taskToken=token)
                    self.renew(project_id, user_id)
                except Exception:  # a missed beat is survivable; the next one retries
                    log.exception("heartbeat failed")

        thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=5)

    # --- work ------------------------------------------------------------------------------------------------

    def _project(self, project_id: str) -> Project:
        item = self.ddb.get_item(
            TableName=self.tables.projects, Key={"projectId": {"S": project_id}}, ConsistentRead=True
        ).get("Item")
        if not item:
            raise ProjectConfigError(f"project {project_id} is not configured")
        return Project.model_validate_json(item["config"]["S"])

    def _message(self, key: str) -> NormalisedMessage:
        body = self.s3.get_object(Bucket=self.settings.mail_bucket, Key=key)["Body"].read()
        return NormalisedMessage.model_validate_json(body)

    def handle(self, item: WorkItem) -> None:
        command = item.command
        log.info("command %s for thread %s", command.messageId, command.threadId)
        try:
            with self._heartbeat(item.taskToken, command.projectId, command.userId):
                project = self._project(command.projectId)
                message = self._message(command.messageKey)
                result = run_command(
                    project,
                    message,
                    command,
                    workspace_root=Path(self.settings.workspace_root),
                    publisher=S3PreviewPublisher(
                        self.settings.preview_bucket, self.settings.preview_base_url, s3_client=self.s3
                    ),
                    identity=(self.settings.git_author_name, self.settings.git_author_email),
                )
        except WebOrdinaryError as exc:
            log.info("command failed: %s: %s", type(exc).__name__, exc)
            self._fail(item.taskToken, exc)
            return
        except Exception as exc:
            log.error("command crashed:\n%s", traceback.format_exc())
            self._fail(item.taskToken, exc)
            return
        self._succeed(item.taskToken, result.model_dump_json())

    def serve(self, project_id: str, user_id: str, queue_url: str) -> None:
        """Take commands until idle for ``idle_seconds`` (or told to stop), then release the pair."""
        last_work = time.monotonic()
        try:
            while not self.stop.is_set():
                idle_left = self.settings.idle_seconds - (time.monotonic() - last_work)
                if idle_left <= 0:
                    break
                if not self.renew(project_id, user_id):
                    log.warning("lost ownership of %s#%s", project_id, user_id)
                    return
                wait = max(1, min(self.settings.poll_seconds, int(idle_left + 0.999)))
                messages = self.sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=wait
                ).get("Messages", [])
                for message in messages:
                    # The workflow owns retries (its heartbeat timeout notices a lost worker), so the queue
                    # message is consumed on receipt rather than redelivered behind the workflow's back.
                    self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    try:
                        item = WorkItem.model_validate_json(message["Body"])
                    except ValueError:
                        log.error("discarding malformed work item: %.200s", message["Body"])
                        continue
                    self.handle(item)
                    last_work = time.monotonic()
        finally:
            self.release(project_id, user_id)

    # --- entry points ----------------------------------------------------------------------------------

    def run_spawned(self) -> None:
        """Started by the workflow's ecs:runTask with a task token: claim, answer, serve, exit."""
        s = self.settings
        ready = self.claim(s.claim_project_id, s.claim_user_id)
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
                ready = self.claim(request.projectId, request.userId)
                self._succeed(request.taskToken, ready.model_dump_json())
                if ready.claimed:
                    self.serve(request.projectId, request.userId, ready.queueUrl)
                    if self.settings.exit_when_idle:
                        return
