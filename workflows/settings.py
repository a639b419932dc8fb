"""Runtime settings, one pydantic model per runtime, read from the environment when called (never at import).

CDK sets these variables on the Lambda and the task definition; the embedded stack sets the same ones on the
processes it starts. The variable names come from :mod:`workflows.names`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from workflows import names


class _EnvModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def env_map(cls) -> dict[str, str]:
        """field name -> environment variable."""
        raise NotImplementedError

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        values = {field: env[var] for field, var in cls.env_map().items() if var in env}
        return cls.model_validate(values)


class Tables(_EnvModel):
    events: str = names.EVENTS_TABLE.local_name
    threads: str = names.THREADS_TABLE.local_name
    messages: str = names.MESSAGES_TABLE.local_name
    projects: str = names.PROJECTS_TABLE.local_name
    ownership: str = names.OWNERSHIP_TABLE.local_name
    spending: str = names.SPENDING_TABLE.local_name

    @classmethod
    def env_map(cls) -> dict[str, str]:
        return {
            "events": names.EVENTS_TABLE.env,
            "threads": names.THREADS_TABLE.env,
            "messages": names.MESSAGES_TABLE.env,
            "projects": names.PROJECTS_TABLE.env,
            "ownership": names.OWNERSHIP_TABLE.env,
            "spending": names.SPENDING_TABLE.env,
        }


class InboundSettings(_EnvModel):
    """The inbound email handler."""

    inbound_domain: str = "mail.webordinary.test"
    mail_bucket: str = names.MAIL_BUCKET.local_name
    raw_mail_prefix: str = names.RAW_MAIL_PREFIX
    state_machine_arn: str = ""
    reply_from_name: str = "WebOrdinary"

    @classmethod
    def env_map(cls) -> dict[str, str]:
        return {
            "inbound_domain": "WEBORDINARY_INBOUND_DOMAIN",
            "mail_bucket": names.MAIL_BUCKET.env,
            "raw_mail_prefix": "WEBORDINARY_RAW_MAIL_PREFIX",
            "state_machine_arn": names.MESSAGE_WORKFLOW.env,
            "reply_from_name": "WEBORDINARY_REPLY_FROM_NAME",
        }


class ReplySettings(_EnvModel):
    """The reply handler (``lambdas/reply``): renders a reply's words and sends it."""

    # SES gives sent mail the Message-ID <{SES message id}@{this}>: email.amazonses.com in us-east-1,
    # {region}.amazonses.com elsewhere. A reply's Message-ID is recorded so that answers to it find the thread.
    ses_message_id_domain: str = "email.amazonses.com"
    # Where the worker keeps the pictures of a change (under screenshots/), to put them inline.
    preview_bucket: str = names.PREVIEW_BUCKET.local_name

    @classmethod
    def env_map(cls) -> dict[str, str]:
        return {
            "ses_message_id_domain": names.REPLY_FUNCTION.env_ses_domain,
            "preview_bucket": names.PREVIEW_BUCKET.env,
        }


class PreviewMissSettings(_EnvModel):
    """The previews' fallback origin (lambdas/preview_misses): the bucket whose sites' 404 pages it reads."""

    preview_bucket: str = names.PREVIEW_BUCKET.local_name

    @classmethod
    def env_map(cls) -> dict[str, str]:
        return {"preview_bucket": names.PREVIEW_BUCKET.env}


class WorkerSettings(_EnvModel):
    """The worker container. ``task_token`` plus ``claim_*`` are set by the workflow's ecs:runTask override;
    without them the worker joins the warm pool and waits for claim requests."""

    workspace_root: str = "/workspace"
    mail_bucket: str = names.MAIL_BUCKET.local_name
    preview_bucket: str = names.PREVIEW_BUCKET.local_name
    preview_base_url: str = ""
    # Each preview at its own origin: "http://{label}.preview.localhost:8123" (see workflows/previews.py).
    # Without it, previews are paths under preview_base_url (root-absolute links then miss).
    preview_origin: str = ""
    # The live sites' origin ("http://{label}.site.localhost:8123", {label} = the project id); "" = no URL known.
    site_origin: str = ""
    claim_queue_url: str = ""
    work_dlq_arn: str = ""
    task_token: str = ""
    claim_project_id: str = ""
    claim_user_id: str = ""
    worker_id: str = ""
    idle_seconds: float = Field(default=300.0, gt=0)
    heartbeat_seconds: float = Field(default=20.0, gt=0)
    poll_seconds: int = Field(default=20, ge=1, le=20)
    git_author_name: str = "WebOrdinary"
    git_author_email: str = "bot@webordinary.test"
    # For HTTPS repositories; given to git only (an ECS secret on AWS), never to agents or builds.
    git_token: str = ""
    # The browser for pictures of a change: "" finds Chromium on PATH, "none" takes no pictures.
    browser: str = ""
    # The claude-code editor: the CLI to run, and the agent's own API key (an ECS secret on AWS; given to the
    # agent alone, never to builds or other tools).
    agent_executable: str = "claude"
    agent_api_key: str = ""
    exit_when_idle: bool = False

    @classmethod
    def env_map(cls) -> dict[str, str]:
        return {
            "workspace_root": "WEBORDINARY_WORKSPACE_ROOT",
            "mail_bucket": names.MAIL_BUCKET.env,
            "preview_bucket": names.PREVIEW_BUCKET.env,
            "preview_base_url": "WEBORDINARY_PREVIEW_BASE_URL",
            "preview_origin": "WEBORDINARY_PREVIEW_ORIGIN",
            "site_origin": "WEBORDINARY_SITE_ORIGIN",
            "claim_queue_url": names.CLAIM_QUEUE.env,
            "work_dlq_arn": "WEBORDINARY_WORK_DLQ_ARN",
            "task_token": "TASK_TOKEN",
            "claim_project_id": "WEBORDINARY_CLAIM_PROJECT_ID",
            "claim_user_id": "WEBORDINARY_CLAIM_USER_ID",
            "worker_id": "WEBORDINARY_WORKER_ID",
            "idle_seconds": "WEBORDINARY_IDLE_SECONDS",
            "heartbeat_seconds": "WEBORDINARY_HEARTBEAT_SECONDS",
            "poll_seconds": "WEBORDINARY_POLL_SECONDS",
            "git_author_name": "WEBORDINARY_GIT_AUTHOR_NAME",
            "git_author_email": "WEBORDINARY_GIT_AUTHOR_EMAIL",
            "git_token": "WEBORDINARY_GIT_TOKEN",
            "browser": "WEBORDINARY_BROWSER",
            "agent_executable": "WEBORDINARY_AGENT_EXECUTABLE",
            "agent_api_key": "ANTHROPIC_API_KEY",
            "exit_when_idle": "WEBORDINARY_EXIT_WHEN_IDLE",
        }
