"""Owning a project+user pair: its work queue, and the lease on the ownership table that makes it ours.

One worker at a time serves a pair (``workflows/adapters/stores/ownership.py`` holds the lease); commands reach it on
the pair's own SQS queue, created on the first claim and kept up to date with the settings of this release.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from workflows import names
from workflows.adapters.stores.ownership import OwnershipStore, owner_key
from workflows.adapters.task_tokens import TaskTokens
from workflows.errors import WorkerReleasedError
from workflows.models import WorkerReady, WorkItem

log = logging.getLogger("webordinary.worker")
_QUEUE_EXISTS = {"QueueAlreadyExists", "QueueNameExists", "AWS.SimpleQueueService.QueueNameExists"}


class Pairs:
    def __init__(
        self, sqs: Any, ownership: OwnershipStore, tokens: TaskTokens, worker_id: str, work_dlq_arn: str = ""
    ) -> None:
        self.sqs = sqs
        self.ownership = ownership
        self.tokens = tokens
        self.worker_id = worker_id
        self.work_dlq_arn = work_dlq_arn

    def queue_url(self, project_id: str, user_id: str) -> str:
        """The pair's work queue, created if it is not there yet."""
        attributes = {
            "VisibilityTimeout": str(names.WORK_QUEUE_VISIBILITY_SECONDS),
            "MessageRetentionPeriod": "86400",
            "SqsManagedSseEnabled": "true",
        }
        if self.work_dlq_arn:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": self.work_dlq_arn, "maxReceiveCount": str(names.WORK_QUEUE_MAX_RECEIVE_COUNT)}
            )
        name = names.work_queue_name(project_id, user_id)
        try:
            url: str = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in _QUEUE_EXISTS:
                raise
            # Created by an earlier release with other settings: bring it up to date rather than fail the claim.
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        return url

    def claim(self, project_id: str, user_id: str) -> WorkerReady:
        """Own the pair, unless a live owner already does: then answer with that owner's queue."""
        queue_url = self.queue_url(project_id, user_id)
        owner = self.ownership.claim(project_id, user_id, self.worker_id, queue_url)
        if owner is not None:
            return WorkerReady(workerId=owner.workerId, queueUrl=owner.queueUrl or queue_url, claimed=False)
        return WorkerReady(workerId=self.worker_id, queueUrl=queue_url, claimed=True)

    def renew(self, project_id: str, user_id: str) -> bool:
        return self.ownership.renew(project_id, user_id, self.worker_id)

    def release(self, project_id: str, user_id: str) -> None:
        """Give the pair up (only if we still own it), then fail anything that slipped into the queue
        meanwhile so its execution claims again instead of waiting for a heartbeat timeout."""
        self.ownership.release(owner_key(project_id, user_id), self.worker_id)
        queue_url = self.queue_url(project_id, user_id)
        received = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in received.get("Messages", []):
            self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            try:
                token = WorkItem.model_validate_json(message["Body"]).taskToken
            except ValueError:
                continue
            self.tokens.fail(token, WorkerReleasedError("the worker released this project before taking the command"))

    def note_running(self, project_id: str, user_id: str, token: str | None, execution: str) -> None:
        """Note on the ownership row which command this worker runs (``token`` None: none now), so if its task
        dies the reaper can fail that command at once (workflows/reaper.py). Best effort: the heartbeat
        timeout is the backstop."""
        try:
            if token is None:
                self.ownership.clear_running(project_id, user_id, self.worker_id)
            else:
                self.ownership.note_running(project_id, user_id, self.worker_id, token, execution)
        except ClientError:
            log.exception("could not note the running command on the ownership row")
