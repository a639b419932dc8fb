"""The message contract between the handler, the workflow and the worker. One model per boundary; field
names are camelCase because the same JSON travels through the ASL (``$.threadId``), where they are spelled
out by hand. A test checks that every ``$.field`` path in the ASL exists in these models.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field

from workflows.commands import CONTINUE_WORDS, PUBLISH_WORDS, UNDO_WORDS
from workflows.threads import THREAD_ID_RE

PROJECT_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
USER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def _check(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def validate(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"invalid {what}: {value!r}")
        return value

    return AfterValidator(validate)


ProjectId = Annotated[str, _check(PROJECT_ID_RE, "project id")]
UserId = Annotated[str, _check(USER_ID_RE, "user id")]
ThreadId = Annotated[str, _check(THREAD_ID_RE, "thread id")]


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class Project(Contract):
    """A website: where its repository lives, how to edit and build it, who may send instructions."""

    projectId: ProjectId
    repoUrl: str
    defaultBranch: str = ""  # "" = the branch the repository itself names as its default (its HEAD)
    editor: str = "replace"
    buildCommand: str = ""
    outputDir: str = ""  # "" = the first of dist, build, out, _site, public that the build writes
    # lower-cased sender address -> user id
    senders: dict[str, UserId] = Field(default_factory=dict)
    # The words that make a message PUBLISH or UNDO instead of an instruction (whole message, any case).
    # The claude-code editor's limits for one change: its model ("" = the CLI's default) and turns.
    agentModel: str = ""
    agentMaxTurns: int = Field(default=30, ge=1, le=500)
    publishWords: list[str] = Field(default_factory=lambda: list(PUBLISH_WORDS))
    undoWords: list[str] = Field(default_factory=lambda: list(UNDO_WORDS))
    # What the coding agent may spend in a calendar month (UTC), in dollars; None = no cap (cost still
    # recorded). When it runs out mid-change the change pauses; CONTINUE allows ``continueUsd`` more.
    monthlyBudgetUsd: float | None = Field(default=None, ge=0)
    continueUsd: float = Field(default=5.0, gt=0)
    continueWords: list[str] = Field(default_factory=lambda: list(CONTINUE_WORDS))

    def user_for(self, address: str) -> str | None:
        return self.senders.get(address.strip().lower())


class AttachmentRef(Contract):
    """An attachment stored content-addressed in the mail bucket (``key`` = ``attachments/{sha256}``); the
    worker copies it into the checkout under ``filename``, which intake has already sanitised."""

    filename: str
    contentType: str
    size: int
    sha256: str
    key: str
    kind: Literal["image", "document"]


class NormalisedMessage(Contract):
    """What the worker needs from an inbound mail, stored in S3 (the execution input only points at it)."""

    messageId: str  # SES message id
    rfcMessageId: str = ""
    projectId: ProjectId
    threadId: ThreadId
    userId: UserId
    sender: str
    senderName: str = ""
    subject: str = ""
    instruction: str
    receivedAt: str
    rawKey: str
    attachments: list[AttachmentRef] = Field(default_factory=list)
    # attachments intake would not store (executables), as "name: reason"; the raw mail still has them
    skippedAttachments: list[str] = Field(default_factory=list)


class ReplyEnvelope(Contract):
    """Who the reply goes to and how it threads, sanitised by the handler (one line each, no control
    characters); the ASL passes these to SES SendEmail and composes only the body."""

    fromAddress: str
    to: str
    replyTo: str
    subject: str
    inReplyTo: str
    references: str


class ExecutionInput(Contract):
    """Input of the ``message`` workflow (kept well under Step Functions' 256 KiB; the mail itself is in S3)."""

    messageId: str
    threadId: ThreadId
    projectId: ProjectId
    userId: UserId
    sender: str
    subject: str
    newThread: bool
    branch: str
    messageKey: str
    reply: ReplyEnvelope
    # 0 for the original execution; n for the n-th `webordinary redrive` of a dead-lettered message.
    redrive: int = 0


class Command(Contract):
    """What the workflow puts on the pair's work queue (with the task token beside it)."""

    messageId: str
    threadId: ThreadId
    projectId: ProjectId
    userId: UserId
    branch: str
    messageKey: str
    executionName: str
    # Set when the workflow dispatches a command again after it was paused for a newer message of another
    # thread: a resumed command waits its turn instead of interrupting the one that paused it.
    resume: bool = False
    attempt: int = 1


class WorkItem(Contract):
    taskToken: str
    command: Command


class ClaimRequest(Contract):
    taskToken: str
    projectId: ProjectId
    userId: UserId
    executionName: str = ""
    requestedAt: str = ""
    timeoutSeconds: int = 0


class WorkerReady(Contract):
    """A worker's answer to a claim or spawn: where to send the pair's commands."""

    workerId: str
    queueUrl: str
    claimed: bool
    # How the execution reached the worker: a warm pool member's claim, a task spawned for the pair, or (set
    # by the ASL) the pair's current owner.
    via: Literal["warm", "spawned", "owner"] = "warm"


class CommandTimings(Contract):
    prepareMs: int = 0
    editMs: int = 0  # the editor (the coding agent) alone
    commitMs: int = 0
    buildMs: int = 0
    publishMs: int = 0
    screenshotMs: int = 0
    totalMs: int = 0


LeftoverKind = Literal["uncommitted", "unpushed"]


class KeptAside(Contract):
    """Leftovers of a run that did not finish, kept on a WIP ref of their own (and on the remote's same ref
    when ``pushed``) instead of being mixed into the command that runs next."""

    ref: str
    commit: str
    kind: LeftoverKind
    pushed: bool = False


class BranchBehind(Contract):
    """The default branch has ``commits`` the thread's branch lacks, and they do not merge cleanly."""

    commits: int
    conflicts: list[str] = []


class Screenshot(Contract):
    """A picture of one page the change touched: where it is on the site, and its PNG's key in the preview
    bucket (the reply fetches it; payloads stay small)."""

    page: str
    key: str
    beforeKey: str = ""  # the same page on the default branch's build, when it has that page


LiveOutcome = Literal["published", "already-live", "stale", "conflict", "nothing", "undone", "live-moved"]


class LiveChange(Contract):
    """What PUBLISH or UNDO did (``CommandResult.live``)."""

    outcome: LiveOutcome
    liveUrl: str = ""  # the live site, when it is known (locally http://{project}.site.localhost:{port}/)
    liveCommit: str = ""  # what is live now (published, already-live, a rollback)
    previousCommit: str = ""  # what was live before a publish: UNDO right after it rolls back to this
    newerCommit: str = ""  # stale: the thread's newer change the owner has not seen
    conflicts: list[str] = []
    undid: str = ""  # UNDO: the change taken back
    undidFiles: list[str] = []
    rolledBack: bool = False  # UNDO right after a publish also took the live site back


class AgentUsage(Contract):
    """What a coding agent reported for a change: its session (resumed by the thread's next change), cost, turns."""

    sessionId: str = ""
    costUsd: float = 0.0
    turns: int = 0
    progress: list[str] = []  # short steps ("editing src/pages/contact.astro"), bounded


class InterruptionDetail(Contract):
    """Why a command stopped before it finished, as the worker tells the workflow: the cause of its
    WorkerInterruptedError (JSON; the ASL's 'Read interruption' parses it, the reply reads it as facts)."""

    interruptedBy: str  # the newer message's id
    byThread: str
    sameThread: bool
    stop: bool
    # Another thread's command is not finished: the workflow dispatches it again after the newer one.
    resume: bool
    wipCommit: str = ""
    pushed: bool = False
    branch: str = ""
    text: str = ""  # in the owner's words (workflows.replies.interruption_text)


class BudgetPause(Contract):
    """Why a change paused: the project's monthly allowance for the coding agent ran out mid-change."""

    spentUsd: float  # this month, this change's work so far included
    allowanceUsd: float  # the month's budget plus what CONTINUE has allowed on top
    continueUsd: float  # how much more one CONTINUE allows


# The workflow's named end for each kind of finished command (``CommandResult.outcome``).
_OUTCOME_OF_KIND: dict[str, Literal["done", "stopped", "paused"]] = {"stopped": "stopped", "paused": "paused"}


class CommandResult(Contract):
    """SendTaskSuccess output. Small on purpose: the reply is composed from it in the ASL."""

    commit: str
    branch: str
    filesChanged: list[str]
    previewUrl: str  # the thread's preview: its latest change
    summary: str
    # "stopped": the command was the STOP keyword; it ended the running command instead of editing.
    # "publish" / "undo": the command was that keyword; ``live`` says what it did.
    # "paused": the month's allowance for the agent ran out mid-change; the work so far is committed and pushed,
    # ``budget`` says how far it got, and CONTINUE allows more.
    kind: Literal["changed", "stopped", "publish", "undo", "paused"] = "changed"
    timings: CommandTimings = CommandTimings()
    # What earlier, unfinished runs left in the checkout, kept aside before this command started.
    keptAside: list[KeptAside] = []
    versionUrl: str = ""  # this change's own preview, never overwritten (empty where previews are paths)
    # The live site's newer changes this branch could not take (they conflict); None when it is up to date.
    behindDefault: BranchBehind | None = None
    screenshots: list[Screenshot] = []
    screenshotNote: str = ""  # why there is no picture, in words for the owner ("" when there are pictures)
    live: LiveChange | None = None
    agent: AgentUsage | None = None
    budget: BudgetPause | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def outcome(self) -> Literal["done", "stopped", "paused"]:
        """Which named end the workflow takes (asl/message.asl.json's Outcome? reads it from the result)."""
        return _OUTCOME_OF_KIND.get(self.kind, "done")


class IntakeOutcome(Contract):
    accepted: bool
    messageId: str
    threadId: str | None = None
    projectId: str | None = None
    executionArn: str | None = None
    executionName: str | None = None
    duplicate: bool = False
    rejected: str | None = None
    status: Literal["STARTED", "DUPLICATE", "REJECTED"] = "STARTED"
