"""Intake: one SES receipt record in, one started execution or one recorded rejection out.

Safe to run twice for the same mail at any point: the decision is stored under the SES message id before
anything else happens, the thread id of a new thread is derived from the SES message id, and the execution
name is derived from both, so a redelivery reuses the first decision and StartExecution deduplicates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from workflows import mail, names, threads
from workflows.errors import RejectedMailError, SenderNotAllowedError, UnknownProjectError
from workflows.eventlog import EventLog, now_iso
from workflows.events import EventType
from workflows.models import ExecutionInput, IntakeOutcome, NormalisedMessage, Project, ReplyEnvelope
from workflows.settings import InboundSettings, Tables

# --- the SES event, as AWS sends it to a Lambda action (only the fields we read) -------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SesVerdict(_Loose):
    status: str = "PROCESSING_FAILED"


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
    s3: Any
    dynamodb: Any
    stepfunctions: Any
    settings: InboundSettings
    tables: Tables

    @property
    def events(self) -> EventLog:
        return EventLog(self.dynamodb, self.tables.events)


def load_project(deps: IntakeDeps, project_id: str) -> Project | None:
    item = deps.dynamodb.get_item(
        TableName=deps.tables.projects, Key={"projectId": {"S": project_id}}, ConsistentRead=True
    ).get("Item")
    if not item:
        return None
    return Project.model_validate_json(item["config"]["S"])


def _thread_project(deps: IntakeDeps, thread_id: str) -> str | None:
    item = deps.dynamodb.get_item(
        TableName=deps.tables.threads, Key={"threadId": {"S": thread_id}}, ConsistentRead=True
    ).get("Item")
    return item["projectId"]["S"] if item and "projectId" in item else None


def _thread_for_message_ids(deps: IntakeDeps, project_id: str, ids: tuple[str, ...]) -> str | None:
    for rfc_id in reversed(ids):  # the nearest ancestor first
        item = deps.dynamodb.get_item(
            TableName=deps.tables.messages, Key={"key": {"S": f"mid#{rfc_id}"}}, ConsistentRead=True
        ).get("Item")
        if item and item.get("projectId", {}).get("S") == project_id:
            return str(item["threadId"]["S"])
    return None


def resolve_thread(
    deps: IntakeDeps, project_id: str, plus_thread: str | None, parsed: mail.ParsedMail, ses_id: str
) -> tuple[str, bool]:
    """Plus-address -> In-Reply-To/References -> a new thread. A thread of another project is never joined."""
    if plus_thread and _thread_project(deps, plus_thread) == project_id:
        return plus_thread, False
    known = _thread_for_message_ids(deps, project_id, (*parsed.references, *parsed.in_reply_to))
    if known:
        return known, False
    return threads.new_thread_id(project_id, ses_id), True


def _find_project(deps: IntakeDeps, recipients: list[str]) -> tuple[Project, str | None]:
    for recipient in recipients:
        split = threads.split_recipient(recipient, deps.settings.inbound_domain)
        if split is None:
            continue
        project = load_project(deps, split[0])
        if project is not None:
            return project, split[1]
    raise UnknownProjectError(f"no project is addressed by {', '.join(recipients) or 'this mail'}")


def _remember(deps: IntakeDeps, key: str, attrs: dict[str, str]) -> None:
    item = {"key": {"S": key}, **{k: {"S": v} for k, v in attrs.items()}}
    deps.dynamodb.put_item(TableName=deps.tables.messages, Item=item)


def _stored_decision(deps: IntakeDeps, ses_id: str) -> dict[str, Any] | None:
    item = deps.dynamodb.get_item(
        TableName=deps.tables.messages, Key={"key": {"S": f"ses#{ses_id}"}}, ConsistentRead=True
    ).get("Item")
    return json.loads(item["decision"]["S"]) if item else None


def _reject(deps: IntakeDeps, ses_id: str, raw_key: str, sender: str, error: RejectedMailError) -> IntakeOutcome:
    project = error.project_id or "-"
    deps.events.append(
        stream=f"intake#{project}",
        event_id=f"{ses_id}#{EventType.MESSAGE_REJECTED}",
        type_=EventType.MESSAGE_REJECTED,
        data={"messageId": ses_id, "reason": error.reason, "detail": str(error), "sender": sender, "rawKey": raw_key},
    )
    outcome = IntakeOutcome(accepted=False, messageId=ses_id, rejected=error.reason, status="REJECTED")
    _remember(deps, f"ses#{ses_id}", {"decision": outcome.model_dump_json()})
    return outcome


def receive(deps: IntakeDeps, record: SesRecord) -> IntakeOutcome:
    ses_id = record.ses.mail.messageId
    raw_key = f"{deps.settings.raw_mail_prefix}{ses_id}"

    decided = _stored_decision(deps, ses_id)
    if decided is not None and not decided.get("accepted"):
        return IntakeOutcome.model_validate({**decided, "duplicate": True, "status": "DUPLICATE"})
    if decided is not None:
        return _start(deps, ExecutionInput.model_validate(decided["input"]), decided["executionName"], redelivery=True)

    raw = deps.s3.get_object(Bucket=deps.settings.mail_bucket, Key=raw_key)["Body"].read()
    sender = record.ses.mail.source
    try:
        parsed = mail.parse(raw)
        sender = parsed.sender
        project, plus_thread = _find_project(deps, record.ses.receipt.recipients or record.ses.mail.destination)
        user_id = project.user_for(parsed.sender)
        if user_id is None:
            raise SenderNotAllowedError(
                f"{parsed.sender} may not send instructions to {project.projectId}", project_id=project.projectId
            )
        thread_id, is_new = resolve_thread(deps, project.projectId, plus_thread, parsed, ses_id)
    except RejectedMailError as error:
        return _reject(deps, ses_id, raw_key, sender, error)

    domain = deps.settings.inbound_domain
    name = threads.execution_name(thread_id, ses_id)
    message = NormalisedMessage(
        messageId=ses_id,
        rfcMessageId=parsed.rfc_message_id,
        projectId=project.projectId,
        threadId=thread_id,
        userId=user_id,
        sender=parsed.sender,
        senderName=parsed.sender_name,
        subject=parsed.subject[:300],
        instruction=mail.extract_instruction(parsed.text),
        receivedAt=record.ses.mail.timestamp or now_iso(),
        rawKey=raw_key,
    )
    message_key = f"{names.MESSAGE_PREFIX}{project.projectId}/{thread_id}/{ses_id}.json"
    deps.s3.put_object(
        Bucket=deps.settings.mail_bucket,
        Key=message_key,
        Body=message.model_dump_json().encode(),
        ContentType="application/json",
    )
    envelope = mail.reply_envelope(
        from_address=f"{project.projectId}@{domain}",
        to=parsed.sender,
        reply_to=threads.plus_address(project.projectId, thread_id, domain),
        subject=parsed.subject,
        in_reply_to=parsed.rfc_message_id,
        references=parsed.references,
        fallback_id=f"<{ses_id}@{domain}>",
    )
    execution_input = ExecutionInput(
        messageId=ses_id,
        threadId=thread_id,
        projectId=project.projectId,
        userId=user_id,
        sender=parsed.sender,
        subject=mail.reply_subject(parsed.subject),
        newThread=is_new,
        branch=threads.branch_for(thread_id),
        messageKey=message_key,
        reply=ReplyEnvelope.model_validate(envelope),
    )
    # The inbound Message-ID maps back to this thread (the workflow adds the reply's SES Message-ID), so
    # replies whose client dropped the plus-address still land in the right thread.
    if parsed.rfc_message_id:
        _remember(deps, f"mid#{parsed.rfc_message_id}", {"threadId": thread_id, "projectId": project.projectId})
    _remember(
        deps,
        f"ses#{ses_id}",
        {
            "decision": json.dumps(
                {"accepted": True, "executionName": name, "input": execution_input.model_dump(mode="json")}
            )
        },
    )
    return _start(deps, execution_input, name)


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
