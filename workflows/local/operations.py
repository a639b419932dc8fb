"""What the CLI, the demo, the benchmark and the tests do against a running embedded stack."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from workflows import names
from workflows.adapters.eventlog import EventLog
from workflows.adapters.stores.threads import DynamoThreads, ThreadRow
from workflows.events import StoredEvent
from workflows.local.stack import ACCOUNT, StackInfo
from workflows.models import IntakeOutcome

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass(frozen=True)
class LocalLambdaContext:
    """Enough of the Lambda context object for Powertools' logger."""

    function_name: str = "webordinary-inbound"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:webordinary-inbound"
    aws_request_id: str = "local"
    log_group_name: str = "/aws/lambda/webordinary-inbound"
    log_stream_name: str = "local"


def ses_message_id_for(raw: bytes) -> str:
    """SES ids are opaque; locally the id is derived from the bytes, so delivering the same file twice is
    the same SES message delivered twice."""
    return "local" + hashlib.sha256(raw).hexdigest()[:35]


def ses_event(raw: bytes, ses_id: str, domain: str, verdict: str = "PASS") -> dict[str, Any]:
    """The event SES gives the Lambda action of a receipt rule (after its S3 action), for this mail."""
    msg = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    recipients = [
        a.lower() for _, a in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", [])) if a.lower().endswith(domain)
    ]
    source = parseaddr(str(msg.get("Return-Path") or msg.get("From") or ""))[1]
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    status = {"status": verdict}
    return {
        "Records": [
            {
                "eventSource": "aws:ses",
                "eventVersion": "1.0",
                "ses": {
                    "mail": {
                        "timestamp": now,
                        "source": source,
                        "messageId": ses_id,
                        "destination": recipients,
                        "headersTruncated": False,
                        "headers": [{"name": k, "value": str(v)} for k, v in msg.items()],
                        "commonHeaders": {
                            "from": [str(msg.get("From", ""))],
                            "to": [str(v) for v in msg.get_all("To", [])],
                            "messageId": str(msg.get("Message-ID", "")),
                            "subject": str(msg.get("Subject", "")),
                        },
                    },
                    "receipt": {
                        "timestamp": now,
                        "processingTimeMillis": 12,
                        "recipients": recipients,
                        "spamVerdict": status,
                        "virusVerdict": status,
                        "spfVerdict": status,
                        "dkimVerdict": status,
                        "dmarcVerdict": status,
                        "dmarcPolicy": "none",
                        "action": {
                            "type": "Lambda",
                            "invocationType": "Event",
                            "functionArn": LocalLambdaContext.invoked_function_arn,
                        },
                    },
                },
            }
        ]
    }


def deliver_email(info: StackInfo, raw: bytes, ses_id: str | None = None) -> IntakeOutcome:
    """Do what SES does: the receipt rule's S3 action stores the raw MIME, then its Lambda action runs the
    inbound handler (here, in this process, against the stack)."""
    from lambdas.inbound.handler import handler
    from workflows.adapters.aws import client

    info.apply()
    capture_handler_logs("webordinary-inbound", Path(info.stateDir) / "logs" / "inbound.log")
    ses_id = ses_id or ses_message_id_for(raw)
    client("s3").put_object(
        Bucket=names.MAIL_BUCKET.local_name,
        Key=f"{names.RAW_MAIL_PREFIX}{ses_id}",
        Body=raw,
        ContentType="message/rfc822",
    )

    # Lambda sends a function's stdout (Powertools' EMF metrics) to CloudWatch; here, to the stack's logs.
    with HandlerStdout.capture(Path(info.stateDir) / "logs" / "inbound.log"):
        result = handler(ses_event(raw, ses_id, info.inboundDomain), LocalLambdaContext(aws_request_id=ses_id))
    return IntakeOutcome.model_validate(result["outcomes"][0])


class HandlerStdout:
    """A stand-in for ``sys.stdout`` that sends what a handler prints, on the thread running it, to a log file,
    and everything else to the real stdout. Unlike contextlib.redirect_stdout it is safe when several threads
    run handlers at once (the benchmark and the concurrency tests do)."""

    _local = threading.local()
    _install_lock = threading.Lock()

    def __init__(self, real: Any) -> None:
        self.real = real

    def write(self, text: str) -> int:
        target = getattr(self._local, "file", None)
        return int((target or self.real).write(text))

    def flush(self) -> None:
        target = getattr(self._local, "file", None)
        (target or self.real).flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    @classmethod
    @contextlib.contextmanager
    def capture(cls, path: Any) -> Iterator[None]:
        with cls._install_lock:
            if not isinstance(sys.stdout, cls):
                sys.stdout = cls(sys.stdout)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as file:
            cls._local.file = file
            try:
                yield
            finally:
                cls._local.file = None


def fetch_preview(url: str, timeout: float = 10.0) -> requests.Response:
    """GET a preview URL as a browser would. ``*.localhost`` is loopback to browsers and curl, but not to
    every resolver (glibc without nss-myhostname), so connect to 127.0.0.1 and send the name as the Host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        local = parts._replace(netloc=f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1")
        return requests.get(urlunsplit(local), headers={"Host": parts.netloc}, timeout=timeout)
    return requests.get(url, timeout=timeout)


def capture_handler_logs(service: str, path: Path) -> None:
    """On AWS a handler's structured logs go to CloudWatch; here, to a file in {state dir}/logs/, so they
    never mix with a command's own output."""
    import logging

    path.parent.mkdir(parents=True, exist_ok=True)
    for handler in logging.getLogger(service).handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "name", None) != str(path):
            handler.setStream(path.open("a", encoding="utf-8"))


def wait_for_execution(sfn: Any, arn: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] in TERMINAL or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def thread_events(dynamodb: Any, thread_id: str) -> list[StoredEvent]:
    return EventLog(dynamodb, names.EVENTS_TABLE.local_name).read(thread_id)


def list_threads(dynamodb: Any) -> list[ThreadRow]:
    return DynamoThreads(dynamodb, names.THREADS_TABLE.local_name).all()


def outbox(info: StackInfo) -> list[dict[str, Any]]:
    """Every reply the system sent, parsed back from the raw MIME SES received."""
    data = requests.get(f"{info.endpoint}/moto-api/data.json", timeout=10).json()
    return [parse_sent(sent) for sent in data.get("ses", {}).get("RawMessage", [])]


def parse_sent(sent: dict[str, Any]) -> dict[str, Any]:
    raw = sent.get("raw_data", "")
    msg = BytesParser(policy=policy.default).parsebytes(raw.encode() if isinstance(raw, str) else raw)
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    html_part = msg.get_body(preferencelist=("html",))
    html = html_part.get_content() if html_part is not None else ""
    reply_to = str(msg.get("Reply-To", ""))
    return {
        "sesMessageId": sent.get("id", ""),
        "to": [a for _, a in getaddresses([str(v) for v in msg.get_all("To", [])])],
        "from": str(msg.get("From", "")),
        "subject": str(msg.get("Subject", "")),
        "text": text,
        "messageId": str(msg.get("Message-ID", "")),
        "inReplyTo": str(msg.get("In-Reply-To", "")),
        "references": str(msg.get("References", "")),
        "replyTo": parseaddr(reply_to)[1],
        "threadId": str(msg.get("X-WebOrdinary-Thread", "")),
        "attachments": [part.get_filename() or "" for part in msg.iter_attachments()],
        "html": html,
        # Inline pictures (multipart/related beside the HTML): Content-ID → the image's bytes.
        "images": {
            str(part.get("Content-ID", "")).strip("<>"): part.get_content()
            for part in msg.walk()
            if part.get_content_maintype() == "image" and part.get("Content-ID")
        },
    }


_PLUMBING = {"Start", "Warm pool?", "Outcome?"}


def trace(sfn: Any, execution_arn: str) -> dict[str, Any]:
    """The execution's path through the state machine, from its history: the branch it took at a glance."""
    described = sfn.describe_execution(executionArn=execution_arn)
    history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    steps: list[dict[str, Any]] = []
    started = history[0]["timestamp"] if history else None
    for event in history:
        kind = event["type"]
        details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        elapsed = int((event["timestamp"] - started).total_seconds() * 1000) if started else 0
        if kind.endswith("StateEntered"):
            steps.append({"state": details.get("name", ""), "enteredMs": elapsed, "outcome": "entered"})
        elif kind.endswith("StateExited") and steps:
            # a failure the state's Catch handled stays visible as "caught"
            steps[-1]["outcome"] = "ok" if steps[-1]["outcome"] == "entered" else f"caught {steps[-1]['outcome']}"
            steps[-1]["ms"] = elapsed - steps[-1]["enteredMs"]
        elif kind in {"TaskFailed", "TaskTimedOut", "ExecutionFailed"} and steps:
            steps[-1]["outcome"] = f"{details.get('error', kind)}"
            if details.get("cause"):
                steps[-1]["cause"] = str(details["cause"])[:300]
    # The branch taken, at a glance: the decisions and actions, without the bookkeeping states around them.
    path = [
        step["state"] for step in steps if not names.is_record_state(step["state"]) and step["state"] not in _PLUMBING
    ]
    return {
        "executionArn": execution_arn,
        "name": described["name"],
        "path": path,
        "status": described["status"],
        "historyEvents": len(history),
        "steps": steps,
        "output": json.loads(described["output"]) if described.get("output") else None,
        "error": described.get("error"),
        "cause": described.get("cause"),
    }


def redrive(info: StackInfo, execution: str | None = None) -> list[dict[str, Any]]:
    """Replay dead-lettered commands (all, or the one of ``execution``) as new executions, each recorded in
    its thread as CommandRedriven. Returns what was started."""
    from workflows.adapters.aws import client
    from workflows.dead_letters import redrive_input
    from workflows.events import EventType

    sqs, sfn = client("sqs"), client("stepfunctions")
    log = EventLog(client("dynamodb"), names.EVENTS_TABLE.local_name)
    started: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=info.deadLetterQueueUrl, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return started
        for message in messages:
            dead = json.loads(message["Body"])
            if execution is not None and execution not in {dead.get("execution"), dead.get("executionArn")}:
                sqs.change_message_visibility(
                    QueueUrl=info.deadLetterQueueUrl, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
                continue
            replay, name = redrive_input(dead)
            log.append(
                replay.threadId,
                f"{replay.messageId}#{EventType.COMMAND_REDRIVEN}#{replay.redrive}",
                EventType.COMMAND_REDRIVEN,
                {"from": dead.get("execution"), "to": name, "failure": dead.get("failure", {})},
                execution=name,
            )
            arn = sfn.start_execution(stateMachineArn=info.stateMachineArn, name=name, input=replay.model_dump_json())[
                "executionArn"
            ]
            sqs.delete_message(QueueUrl=info.deadLetterQueueUrl, ReceiptHandle=message["ReceiptHandle"])
            started.append({"from": dead.get("execution"), "execution": name, "executionArn": arn})
        if execution is not None and started:
            return started
