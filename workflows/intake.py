"""Intake: one SES receipt record in, one started execution or one recorded rejection out.

Safe to run twice for the same mail at any point: the decision is stored under the SES message id (after the
event that explains it), a new thread's id is derived from the SES message id and claimed with a condition,
attachments are content-addressed, and the execution name is derived from the thread and the message, so a
redelivery reuses the first decision and StartExecution deduplicates. A notice to the sender (a refusal, or an
explanation why an allowed sender's mail could not be used) is claimed per SES message before it is sent, so
it goes out at most once, and is rate-limited per sender and day so that a flood gets one answer.

The checks run cheapest and most dangerous first: SES's virus and spam verdicts, then the headers (bounces,
auto-replies and our own mail coming back are never answered), then who sent it (project, SPF/DKIM/DMARC,
the allow-list), and only then the body and attachments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from workflows import names, replies, threads
from workflows.adapters.eventlog import EventLog, EventStore, now_iso
from workflows.adapters.stores.messages import Decision, DynamoMessages, MessagesStore, NoticeKind, ThreadLink
from workflows.adapters.stores.projects import DynamoProjects, ProjectsStore
from workflows.adapters.stores.threads import DynamoThreads, ThreadsStore, project_of
from workflows.errors import (
    AuthFailedError,
    AutoReplyError,
    BounceError,
    EmptyInstructionError,
    InstructionTooLongError,
    MailLoopError,
    NoSenderError,
    RejectedMailError,
    SenderNotAllowedError,
    SpamError,
    TooLargeError,
    UnknownProjectError,
    VirusError,
)
from workflows.events import EventType
from workflows.models import AttachmentRef, ExecutionInput, IntakeOutcome, NormalisedMessage, Project, ReplyEnvelope
from workflows.settings import InboundSettings, Tables

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client
    from types_boto3_sesv2 import SESV2Client
    from types_boto3_stepfunctions import SFNClient

    from workflows.attachments import AttachmentLimits
    from workflows.mail import MailHeaders, ParsedMail

# --- the SES event, as AWS sends it to a Lambda action (only the fields we read) -------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SesVerdict(_Loose):
    status: str = "PROCESSING_FAILED"  # a missing verdict counts as not PASS


class SesReceipt(_Loose):
    recipients: list[str] = Field(default_factory=list)
    timestamp: str = ""
    spamVerdict: SesVerdict = SesVerdict()
    virusVerdict: SesVerdict = SesVerdict()
    spfVerdict: SesVerdict = SesVerdict()
    dkimVerdict: SesVerdict = SesVerdict()
    dmarcVerdict: SesVerdict = SesVerdict()


class SesMail(_Loose):
    messageId: str
    source: str = ""
    timestamp: str = ""
    destination: list[str] = Field(default_factory=list)


class SesPayload(_Loose):
    mail: SesMail
    receipt: SesReceipt


class SesRecord(_Loose):
    eventSource: str = "aws:ses"
    ses: SesPayload


class SesEvent(_Loose):
    Records: list[SesRecord]


# --- dependencies -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeDeps:
    s3: S3Client
    stepfunctions: SFNClient
    settings: InboundSettings
    messages: MessagesStore
    threads: ThreadsStore
    projects: ProjectsStore
    events: EventStore
    # The SESv2 client, created only when a notice is sent (most invocations never need it).
    sesv2: Callable[[], SESV2Client] | None = None
    limits: AttachmentLimits | None = None

    @classmethod
    def on_dynamodb(
        cls,
        *,
        s3: S3Client,
        dynamodb: DynamoDBClient,
        stepfunctions: SFNClient,
        settings: InboundSettings,
        tables: Tables,
        sesv2: Callable[[], SESV2Client] | None = None,
        limits: AttachmentLimits | None = None,
    ) -> IntakeDeps:
        """The stores on their DynamoDB tables (the Lambda, the embedded stack)."""
        return cls(
            s3=s3,
            stepfunctions=stepfunctions,
            settings=settings,
            messages=DynamoMessages(dynamodb, tables.messages),
            threads=DynamoThreads(dynamodb, tables.threads),
            projects=DynamoProjects(dynamodb, tables.projects),
            events=EventLog(dynamodb, tables.events),
            sesv2=sesv2,
            limits=limits,
        )


REFUSALS_PER_SENDER_PER_DAY = 1
NOTICES_PER_SENDER_PER_DAY = 10
# Which rejections are answered. Everything else (spam, virus, forged or automatic mail, unknown projects,
# mail without a sender) is only recorded: answering it would be backscatter or a mail loop.
_NOTICE_FOR: dict[str, NoticeKind] = {
    SenderNotAllowedError.reason: "refusal",
    TooLargeError.reason: "problem",
    "too-many-attachments": "problem",
    "attachment-too-large": "problem",
    "malformed-mail": "problem",
    EmptyInstructionError.reason: "problem",
    InstructionTooLongError.reason: "problem",
}


@dataclass
class _Context:
    """What intake learned about the mail before it was rejected: decides whether and how to answer."""

    ses_id: str
    raw_key: str
    sender: str
    project: Project | None = None
    headers: MailHeaders | None = None
    trusted: bool = False  # SPF/DKIM/DMARC vouch for the sender's domain
    allowed: bool = False  # the sender is on the project's allow-list
    raw_size: int = 0


# --- lookups ------------------------------------------------------------------------------------------------


def _thread_for_message_ids(deps: IntakeDeps, project_id: str, ids: tuple[str, ...]) -> str | None:
    for rfc_id in list(reversed(ids))[:20]:  # the nearest ancestor first
        link = deps.messages.thread_of(rfc_id)
        if link and link.projectId == project_id and threads.is_thread_id(link.threadId):
            return link.threadId
    return None


def _claim_new_thread(deps: IntakeDeps, project_id: str, ses_id: str) -> str:
    """A fresh thread id, derived from the SES id (so a retry gets the same one) and claimed with a condition,
    so an id is never shared by two threads, of this project or another."""
    for attempt in range(16):
        thread_id = threads.new_thread_id(project_id, ses_id if attempt == 0 else f"{ses_id}#{attempt}")
        if deps.threads.claim(thread_id, project_id, ses_id, now_iso()):
            return thread_id
    raise RuntimeError(f"no free thread id for {ses_id} after 16 tries")  # 30^8 ids: not expected to happen


ThreadVia = Literal["plus-address", "references", "subject-tag", "new"]


def resolve_thread(
    deps: IntakeDeps, project_id: str, plus_thread: str | None, headers: MailHeaders, ses_id: str
) -> tuple[str, bool, ThreadVia]:
    """Plus-address -> In-Reply-To/References -> subject tag -> a new thread. Each candidate must be a thread
    of this project: a thread of another project is never joined, whatever the mail claims."""
    from workflows import mail

    if plus_thread and project_of(deps.threads, plus_thread) == project_id:
        return plus_thread, False, "plus-address"
    known = _thread_for_message_ids(deps, project_id, (*headers.references, *headers.in_reply_to))
    if known:
        return known, False, "references"
    tagged = mail.subject_tag(headers.subject)
    if tagged and threads.is_thread_id(tagged) and project_of(deps.threads, tagged) == project_id:
        return tagged, False, "subject-tag"
    return _claim_new_thread(deps, project_id, ses_id), True, "new"


def _find_project(deps: IntakeDeps, recipients: list[str]) -> tuple[Project | None, str | None]:
    for recipient in recipients[:10]:
        split = threads.split_recipient(recipient, deps.settings.inbound_domain)
        if split is None:
            continue
        project = deps.projects.get(split[0])
        if project is not None:
            return project, split[1]
    return None, None


# --- trust (pure) ---------------------------------------------------------------------------------------------


def _passed(verdict: SesVerdict) -> bool:
    return verdict.status.upper() == "PASS"


def _aligned(domain: str, other: str) -> bool:
    """Relaxed alignment without a public-suffix list: equal, or one a subdomain of the other."""
    domain, other = domain.lower().strip("."), other.lower().strip(".")
    return bool(domain and other) and (domain == other or domain.endswith("." + other) or other.endswith("." + domain))


def content_problem(receipt: SesReceipt, project_id: str = "") -> RejectedMailError | None:
    """Virus and spam verdicts must be PASS: GRAY, FAIL and PROCESSING_FAILED all stop the mail."""
    if not _passed(receipt.virusVerdict):
        return VirusError(f"SES virus verdict {receipt.virusVerdict.status}", project_id)
    if not _passed(receipt.spamVerdict):
        return SpamError(f"SES spam verdict {receipt.spamVerdict.status}", project_id)
    return None


def auth_problem(
    receipt: SesReceipt, headers: MailHeaders, source: str, project_id: str = ""
) -> AuthFailedError | None:
    """Work only for mail whose From domain is vouched for: DMARC must not FAIL and SPF or DKIM must PASS.
    When DMARC did not PASS either (the domain publishes no policy), SES's SPF and DKIM verdicts may be about
    another domain (the envelope sender, the signer), so they count only when aligned with the From domain."""
    dmarc = receipt.dmarcVerdict.status.upper()
    if dmarc == "FAIL":
        return AuthFailedError("DMARC verdict FAIL", project_id)
    if not (_passed(receipt.spfVerdict) or _passed(receipt.dkimVerdict)):
        return AuthFailedError(
            f"neither SPF ({receipt.spfVerdict.status}) nor DKIM ({receipt.dkimVerdict.status}) passed", project_id
        )
    if dmarc == "PASS":
        return None
    envelope_domain = source.rpartition("@")[2].strip("<> ")
    spf_aligned = _passed(receipt.spfVerdict) and _aligned(envelope_domain, headers.sender_domain)
    dkim_aligned = _passed(receipt.dkimVerdict) and any(
        _aligned(signer, headers.sender_domain) for signer in headers.dkim_domains
    )
    if spf_aligned or dkim_aligned:
        return None
    return AuthFailedError(
        f"DMARC {dmarc} and neither SPF nor DKIM is aligned with the From domain {headers.sender_domain}", project_id
    )


# --- the decision -------------------------------------------------------------------------------------------


def _read_raw(deps: IntakeDeps, key: str, max_bytes: int, prefix_bytes: int) -> tuple[bytes, int, bool]:
    """(bytes, size, complete). A mail over the limit is not downloaded: its first bytes name the sender."""
    response = deps.s3.get_object(Bucket=deps.settings.mail_bucket, Key=key)
    size = int(response.get("ContentLength") or 0)
    body = response["Body"]
    if size > max_bytes:
        raw = body.read(prefix_bytes)
        body.close()
        return raw, size, False
    raw = body.read()
    return raw, len(raw), len(raw) <= max_bytes


def receive(deps: IntakeDeps, record: SesRecord) -> IntakeOutcome:
    ses_id = record.ses.mail.messageId
    raw_key = f"{deps.settings.raw_mail_prefix}{ses_id}"

    decided = deps.messages.decision(ses_id)
    if decided is not None and decided.outcome is not None:
        return decided.outcome.model_copy(update={"duplicate": True, "status": "DUPLICATE"})
    if decided is not None and decided.input is not None:
        return _start(deps, decided.input, decided.executionName, redelivery=True)

    context = _Context(ses_id=ses_id, raw_key=raw_key, sender=record.ses.mail.source)
    try:
        execution_input, name = _accept(deps, record, context)
    except RejectedMailError as error:
        return _reject(deps, record, context, error)
    return _start(deps, execution_input, name)


def _accept(deps: IntakeDeps, record: SesRecord, context: _Context) -> tuple[ExecutionInput, str]:
    from workflows import mail

    receipt = record.ses.receipt
    domain = deps.settings.inbound_domain
    project, plus_thread = _find_project(deps, receipt.recipients or record.ses.mail.destination)
    context.project = project
    project_id = project.projectId if project else ""

    problem = content_problem(receipt, project_id)
    if problem is not None:
        raise problem
    raw, context.raw_size, complete = _read_raw(deps, context.raw_key, mail.MAX_RAW_BYTES, mail.HEADER_PREFIX_BYTES)
    headers = mail.read_headers(raw, own_domain=domain)
    context.headers = headers
    context.sender = headers.sender or context.sender
    if headers.automatic == "bounce":
        raise BounceError(f"a delivery status notification ({headers.automatic_detail})", project_id)
    if headers.automatic == "loop":
        raise MailLoopError(f"mail from a WebOrdinary address ({headers.automatic_detail})", project_id)
    if headers.automatic == "auto-reply":
        raise AutoReplyError(f"an automatic reply ({headers.automatic_detail})", project_id)
    if not headers.sender:
        raise NoSenderError(headers.sender_problem or "the message has no From address", project_id)
    if project is None:
        raise UnknownProjectError(f"no project is addressed by {', '.join(receipt.recipients) or 'this mail'}")
    problem = auth_problem(receipt, headers, record.ses.mail.source, project_id)
    if problem is not None:
        raise problem
    context.trusted = True
    user_id = project.user_for(headers.sender)
    if user_id is None:
        raise SenderNotAllowedError(f"{headers.sender} may not send instructions to {project_id}", project_id)
    context.allowed = True
    if not complete:
        raise TooLargeError(replies.mail_too_large(context.raw_size, mail.MAX_RAW_BYTES), project_id)

    parsed = _parse(deps, raw, domain, project_id)
    instruction = mail.extract_instruction(parsed.text)
    if not instruction and not mail.is_reply_subject(parsed.subject):
        # "Subject: Make the logo bigger" with an empty body: the subject is the instruction.
        instruction = mail.bare_subject(parsed.subject)
    if not instruction:
        raise EmptyInstructionError("no new text above the quoted part", project_id)
    if len(instruction) > mail.MAX_INSTRUCTION_CHARS:
        raise InstructionTooLongError(
            replies.instruction_too_long(len(instruction), mail.MAX_INSTRUCTION_CHARS), project_id
        )

    ses_id = context.ses_id
    thread_id, is_new, _via = resolve_thread(deps, project_id, plus_thread, headers, ses_id)
    message = NormalisedMessage(
        messageId=ses_id,
        rfcMessageId=headers.rfc_message_id,
        projectId=project_id,
        threadId=thread_id,
        userId=user_id,
        sender=headers.sender,
        senderName=headers.sender_name,
        subject=headers.subject[:300],
        instruction=instruction,
        receivedAt=record.ses.mail.timestamp or now_iso(),
        rawKey=context.raw_key,
        attachments=_store_attachments(deps, parsed),
        skippedAttachments=list(parsed.skipped),
    )
    message_key = f"{names.MESSAGE_PREFIX}{project_id}/{thread_id}/{ses_id}.json"
    deps.s3.put_object(
        Bucket=deps.settings.mail_bucket,
        Key=message_key,
        Body=message.model_dump_json().encode(),
        ContentType="application/json",
    )
    envelope = mail.reply_envelope(
        from_address=f"{project_id}@{domain}",
        to=headers.sender,
        reply_to=threads.plus_address(project_id, thread_id, domain),
        subject=headers.subject,
        in_reply_to=headers.rfc_message_id,
        references=headers.references,
        fallback_id=f"<{ses_id}@{domain}>",
        thread_id=thread_id,
    )
    name = threads.execution_name(thread_id, ses_id)
    execution_input = ExecutionInput(
        messageId=ses_id,
        threadId=thread_id,
        projectId=project_id,
        userId=user_id,
        sender=headers.sender,
        subject=mail.reply_subject(headers.subject),
        newThread=is_new,
        branch=threads.branch_for(thread_id),
        messageKey=message_key,
        reply=ReplyEnvelope.model_validate(envelope),
    )
    # The inbound Message-ID maps back to this thread (the workflow adds the reply's SES Message-ID), so replies
    # whose client dropped the plus-address still land in the right thread. First writer wins: a later mail
    # reusing someone's Message-ID cannot move it to another thread.
    if headers.rfc_message_id:
        deps.messages.link_message_id(headers.rfc_message_id, ThreadLink(threadId=thread_id, projectId=project_id))
    deps.messages.remember_decision(ses_id, Decision(accepted=True, executionName=name, input=execution_input))
    return execution_input, name


def _parse(deps: IntakeDeps, raw: bytes, domain: str, project_id: str) -> ParsedMail:
    from workflows import mail
    from workflows.attachments import AttachmentLimits

    try:
        return mail.parse(raw, deps.limits or AttachmentLimits(), own_domain=domain)
    except RejectedMailError as error:
        error.project_id = error.project_id or project_id
        raise


def _store_attachments(deps: IntakeDeps, parsed: ParsedMail) -> list[AttachmentRef]:
    refs: list[AttachmentRef] = []
    stored: set[str] = set()
    for attachment in parsed.attachments:
        digest = attachment.sha256
        if digest not in stored:  # content-addressed: the same bytes are one object
            deps.s3.put_object(
                Bucket=deps.settings.mail_bucket,
                Key=attachment.key,
                Body=attachment.data,
                ContentType=attachment.content_type,
            )
            stored.add(digest)
        refs.append(
            AttachmentRef(
                filename=attachment.filename,
                contentType=attachment.content_type,
                size=len(attachment.data),
                sha256=digest,
                key=attachment.key,
                kind="image" if attachment.kind == "image" else "document",
            )
        )
    return refs


def _reject(deps: IntakeDeps, record: SesRecord, context: _Context, error: RejectedMailError) -> IntakeOutcome:
    project = error.project_id or (context.project.projectId if context.project else "") or "-"
    notice = _notify(deps, record, context, error)
    deps.events.append(
        stream=f"intake#{project}",
        event_id=f"{context.ses_id}#{EventType.MESSAGE_REJECTED}",
        type_=EventType.MESSAGE_REJECTED,
        data={
            "messageId": context.ses_id,
            "reason": error.reason,
            "detail": str(error)[:1000],
            "sender": context.sender[:254],
            "rawKey": context.raw_key,
            "notice": notice,
        },
    )
    outcome = IntakeOutcome(
        accepted=False,
        messageId=context.ses_id,
        projectId=None if project == "-" else project,
        rejected=error.reason,
        status="REJECTED",
    )
    deps.messages.remember_decision(context.ses_id, Decision(accepted=False, outcome=outcome))
    return outcome


def _notify(deps: IntakeDeps, record: SesRecord, context: _Context, error: RejectedMailError) -> str:
    """Answer the sender when that helps and cannot hurt: "sent", "rate-limited", "already-sent", "failed" or
    "none". Never to forged, automatic or unknown-project mail (only trusted senders reach the checks that
    produce answerable reasons)."""
    from workflows import mail

    kind = _NOTICE_FOR.get(error.reason)
    headers, project, sender = context.headers, context.project, context.sender
    if kind is None or headers is None or project is None or not context.trusted or deps.sesv2 is None:
        return "none"
    if (kind == "problem" and not context.allowed) or not mail.is_address(sender):
        return "none"
    if not deps.messages.claim_notice(context.ses_id, error.reason):
        return "already-sent"  # an earlier try of this very delivery got this far
    day = (record.ses.mail.timestamp or now_iso())[:10]
    limit = REFUSALS_PER_SENDER_PER_DAY if kind == "refusal" else NOTICES_PER_SENDER_PER_DAY
    if not deps.messages.take_notice_budget(kind, sender, day, limit):
        return "rate-limited"
    domain = deps.settings.inbound_domain
    project_address = f"{project.projectId}@{domain}"
    envelope = mail.reply_envelope(
        from_address=project_address,
        to=sender,
        reply_to=project_address,
        subject=headers.subject,
        in_reply_to=headers.rfc_message_id,
        references=headers.references,
        fallback_id=f"<{context.ses_id}@{domain}>",
    )
    text = replies.notice(kind, error, project_address, sender).text
    try:
        deps.sesv2().send_email(
            FromEmailAddress=envelope["fromAddress"],
            Destination={"ToAddresses": [envelope["to"]]},
            ReplyToAddresses=[envelope["replyTo"]],
            Content={
                "Simple": {
                    "Subject": {"Data": envelope["subject"], "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
                    "Headers": [
                        {"Name": "In-Reply-To", "Value": envelope["inReplyTo"]},
                        {"Name": "References", "Value": envelope["references"]},
                        {"Name": "Auto-Submitted", "Value": "auto-replied"},
                        {"Name": "X-WebOrdinary-Notice", "Value": error.reason},
                    ],
                }
            },
        )
    except (ClientError, BotoCoreError):
        # The rejection itself is recorded either way; a retry would not resend (the claim above).
        return "failed"
    return "sent"


def _start(deps: IntakeDeps, execution_input: ExecutionInput, name: str, redelivery: bool = False) -> IntakeOutcome:
    """Start (or, for a redelivered mail, re-confirm) the execution. Same name and input while it runs returns
    the same execution; after it ended, ExecutionAlreadyExists: either way there is exactly one."""
    arn = f"{deps.settings.state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
    duplicate = redelivery
    try:
        arn = deps.stepfunctions.start_execution(
            stateMachineArn=deps.settings.state_machine_arn,
            name=name,
            input=execution_input.model_dump_json(),
        )["executionArn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        duplicate = True
    return IntakeOutcome(
        accepted=True,
        messageId=execution_input.messageId,
        threadId=execution_input.threadId,
        projectId=execution_input.projectId,
        executionArn=arn,
        executionName=name,
        duplicate=duplicate,
        status="DUPLICATE" if duplicate else "STARTED",
    )
