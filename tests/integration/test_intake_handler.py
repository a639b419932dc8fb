"""Intake through its Lambda handler on the embedded stack: the DynamoDB stores, S3, SES and Step Functions as
the deployed function uses them. (The decisions themselves run fast over the stores' fakes in
``tests/unit/test_intake_corpus.py``; the whole path from mail to reply in ``test_email_to_reply.py``.)"""

from __future__ import annotations

from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any

import pytest
import requests

from tests.conftest import FIXTURES
from workflows import names, projects
from workflows.adapters.aws import client
from workflows.adapters.eventlog import EventLog
from workflows.local import operations
from workflows.local.stack import StackInfo

pytestmark = pytest.mark.integration

CORPUS = FIXTURES / "mail" / "corpus"


def _rejection(project: str, ses_id: str) -> list[Any]:
    events = EventLog(client("dynamodb"), names.EVENTS_TABLE.local_name).read(f"intake#{project}")
    return [e for e in events if e.data.get("messageId") == ses_id]


def _notices_to(info: StackInfo, address: str) -> list[Message]:
    data = requests.get(f"{info.endpoint}/moto-api/data.json", timeout=30).json()
    raws = [m.get("raw_data", "") for m in data.get("ses", {}).get("RawMessage", [])]
    sent = [BytesParser(policy=policy.default).parsebytes(r.encode() if isinstance(r, str) else r) for r in raws]
    return [m for m in sent if address in str(m.get("To", "")) and m.get("X-WebOrdinary-Notice")]


def test_the_lambda_handler_records_and_refuses(info: StackInfo) -> None:
    projects.save_project(
        client("dynamodb"),
        names.PROJECTS_TABLE.local_name,
        projects.make_project("handler", "/nowhere", ["alice@example.com"]),
    )
    raw = (
        (CORPUS / "own" / "24-unknown-sender.eml")
        .read_bytes()
        .replace(b"corpus@mail.webordinary.test", b"handler@mail.webordinary.test")
        .replace(b"stranger@unknown.test", b"via-handler@unknown.test")
    )
    outcome = operations.deliver_email(info, raw, ses_id="corpus-handler-1")
    assert outcome.rejected == "sender-not-allowed"
    assert [e.data["notice"] for e in _rejection("handler", "corpus-handler-1")] == ["sent"]
    assert len(_notices_to(info, "via-handler@unknown.test")) == 1
    kept = client("s3").get_object(Bucket=names.MAIL_BUCKET.local_name, Key="inbound/corpus-handler-1")["Body"].read()
    assert kept == raw
    # A redelivery (the Lambda retried) reuses the stored decision: one event, one notice.
    again = operations.deliver_email(info, raw, ses_id="corpus-handler-1")
    assert again.duplicate and again.rejected == "sender-not-allowed"
    assert len(_rejection("handler", "corpus-handler-1")) == 1
    assert len(_notices_to(info, "via-handler@unknown.test")) == 1
