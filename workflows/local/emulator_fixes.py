"""Work-arounds for moto bugs, and only those. Product code never knows they exist.

Each fix says what it repairs; ``tests/integration/test_emulator_fixes.py`` runs an *unpatched* moto in a
subprocess and fails the day moto's behaviour changes, so a fix that is no longer needed gets noticed and
deleted. See ../shared/research/moto-matrix.md for the evidence behind each.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import requests

_applied = False


def fix_service_parameter_normalisation() -> None:
    """P1. moto 5.2.5 stubs ``StateTaskService._normalise_parameters``/``_normalise_response`` with ``pass``,
    so the PascalCase parameters that Step Functions integrations use (``Cluster``, ``TaskDefinition``…)
    reach botocore unconverted and every ``ecs:runTask`` fails with ``States.Runtime`` cause ``'Cluster'``.
    This restores the conversion to and from botocore's shapes (what AWS and LocalStack do)."""
    import botocore.session
    from botocore import xform_name
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    session = botocore.session.get_session()
    operations: dict[tuple[str, str], Any] = {}

    def operation(service: str, action: str) -> Any:
        if (service, action) not in operations:
            model = session.get_service_model(service)
            by_python_name = {xform_name(n): n for n in model.operation_names}
            operations[(service, action)] = (
                model.operation_model(by_python_name[action]) if action in by_python_name else None
            )
        return operations[(service, action)]

    # moto calls these with keyword arguments: keep the parameter names.
    def normalise_parameters(
        self: Any, parameters: Any, boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        op = operation(
            self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
        )
        if op is not None and op.input_shape is not None:
            self._to_boto_request(parameters, op.input_shape)

    def normalise_response(
        self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        op = operation(
            self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
        )
        if op is not None and op.output_shape is not None:
            self._from_boto_response(response, op.output_shape)

    StateTaskService._normalise_parameters = normalise_parameters  # type: ignore[method-assign]
    StateTaskService._normalise_response = normalise_response  # type: ignore[method-assign]


def fix_send_task_failure_cause() -> None:
    """P2. moto's SendTaskFailure handler never reads ``cause``, so the Catch sees ``Cause: null`` and the
    user would be told nothing about why their change failed."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]


def freeze_ecs_task_status(endpoint: str) -> None:
    """moto advances an ECS task one lifecycle step on *every* DescribeTasks call (RUNNING -> DEACTIVATING ->
    ... -> STOPPED), so tasks would "stop" while their process still runs. Freeze the progression; the local
    ECS runner calls StopTask itself when the process exits, which is what ECS reports on AWS."""
    requests.post(
        f"{endpoint}/moto-api/state-manager/set-transition",
        json={"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
        timeout=10,
    ).raise_for_status()


def _simple_as_mime(params: dict[str, Any], simple: dict[str, Any]) -> str:
    """SESv2 ``Simple`` content as the MIME message SES would deliver (Message-ID still to be assigned)."""
    from email.message import EmailMessage
    from email.utils import formatdate

    msg = EmailMessage()
    msg["From"] = params.get("FromEmailAddress", "")
    destination = params.get("Destination", {})
    for header, key in (("To", "ToAddresses"), ("Cc", "CcAddresses")):
        if destination.get(key):
            msg[header] = ", ".join(destination[key])
    if params.get("ReplyToAddresses"):
        msg["Reply-To"] = ", ".join(params["ReplyToAddresses"])
    msg["Subject"] = simple.get("Subject", {}).get("Data", "")
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = "<PENDING>"
    for header in simple.get("Headers", []):
        msg[header["Name"]] = header["Value"]
    body = simple.get("Body", {})
    msg.set_content(body.get("Text", {}).get("Data", ""), charset="utf-8")
    if "Html" in body:
        msg.add_alternative(body["Html"]["Data"], subtype="html", charset="utf-8")
    return msg.as_string()


def keep_simple_email_headers(message_id_domain: str) -> None:
    """moto's SESv2 SendEmail with ``Simple`` content stores only source, subject and body: Reply-To, the
    custom ``Headers`` (In-Reply-To, References…) and the Message-ID that SES assigns are all dropped, so the
    local outbox could not show how a reply threads. Store the message as AWS delivers it instead: rendered
    to MIME with those headers, as a raw message (moto keeps raw messages whole). A ``Raw`` message is kept
    as sent but, as on AWS, with SES's own Message-ID (moto assigns none)."""
    from moto.sesv2.responses import SESV2Response

    original = SESV2Response.send_email

    def send_email(self: Any) -> str:
        params = json.loads(self.body)
        content = params.get("Content", {})
        destination = params.get("Destination", {})
        if "Raw" in content:
            # A raw message keeps what it says, except that SES gives it its own Message-ID.
            text = base64.b64decode(content["Raw"]["Data"]).decode("utf-8")
            text = "Message-ID: <PENDING>\r\n" + re.sub(r"(?im)^Message-ID:.*\r?\n", "", text)
        elif "Simple" in content:
            text = _simple_as_mime(params, content["Simple"])
        else:
            return str(original(self))
        recipients = [a for key in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destination.get(key, [])]
        sent = self.sesv2_backend.send_raw_email(
            source=params.get("FromEmailAddress"), destinations=recipients, raw_data=text
        )
        sent.raw_data = sent.raw_data.replace("<PENDING>", f"<{sent.id}@{message_id_domain}>", 1)
        return json.dumps({"MessageId": sent.id})

    SESV2Response.send_email = send_email  # type: ignore[method-assign]


def reuse_task_clients() -> None:
    """moto's ASL interpreter builds a new boto3 client for every Task state it runs (tens of milliseconds of
    CPU each); with a few executions in flight on two cores that alone made every DynamoDB step take about a
    second. Reuse one client per (region, service, credentials): the clients are thread-safe once built."""
    import threading

    # Import every service integration first: each did "from ... import boto_client_for".
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_factory
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    cache: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, repr(state_credentials))
        with lock:
            if key not in cache:
                cache[key] = original(region, service, state_credentials)
            return cache[key]

    boto_client.boto_client_for = boto_client_for
    for module in _modules_importing(boto_client, "boto_client_for"):
        module.boto_client_for = boto_client_for
    del state_task_service_factory


def fix_state_entered_time_format() -> None:
    """moto 5.2.5 writes ``$$.State.EnteredTime`` as Python's ``isoformat()`` (microseconds, ``+00:00``);
    AWS writes ISO 8601 in UTC with milliseconds and ``Z`` (``2026-12-04T21:42:12.123Z``). The event log's
    ``order`` begins with that time and Python writers use AWS's format, so with moto's the two would not sort
    together. This makes moto write AWS's format; the time itself (taken once per state entry, kept across
    the state's Retries) is unchanged."""
    from datetime import datetime

    from moto.stepfunctions.parser.asl.component.state import state as state_module

    original = state_module.StateData  # type: ignore[attr-defined]

    def aws_state_data(**fields: Any) -> Any:
        entered = fields.get("EnteredTime")
        if isinstance(entered, str):
            moment = datetime.fromisoformat(entered.replace("Z", "+00:00"))
            fields["EnteredTime"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return original(**fields)

    state_module.StateData = aws_state_data  # type: ignore[attr-defined,assignment]


# The DynamoDB backend's methods that change items; serialise_dynamodb_writes puts them behind one lock.
DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def serialise_dynamodb_writes() -> None:
    """moto 5.2.5's ``DynamoDBBackend.transact_write_items`` deep-copies every table it touches (to roll back on
    failure) while the threaded server lets other requests write to the same tables: the copy then fails with
    ``RuntimeError: dictionary changed size during iteration`` and the transaction answers HTTP 500, which AWS
    never does for that reason. This puts moto's DynamoDB writes behind one lock, so a transaction's copy never
    races a write; reads are untouched."""
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in DYNAMODB_WRITES:
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(original)(locked))


LAMBDA_HANDLERS: dict[str, Callable[[dict[str, Any]], Any]] = {}  # function name -> handler; the stack fills it


def run_lambda_handlers_in_process() -> None:
    """P4. Without Docker, moto runs no Lambda code: with ``{"lambda": {"use_docker": false}}`` its simple
    backend answers ``lambda:invoke`` by echoing the payload. Run our Python handlers instead, by function name,
    on moto's request thread (the server is threaded, so a handler can call back into moto). A handler's
    exception becomes an unhandled function error, which Step Functions sees as ``errorType`` (Retry/Catch
    work as on AWS). Names not in ``LAMBDA_HANDLERS`` keep moto's behaviour."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    original = LambdaSimpleBackend.invoke

    def invoke(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any) -> bytes:
        name = function_name.split(":function:")[-1].split(":")[0]
        handler = LAMBDA_HANDLERS.get(name)
        if handler is None:
            echoed = original(self, function_name, qualifier, body, headers, response_headers)
            return echoed.encode() if isinstance(echoed, str) else bytes(echoed or b"")
        try:
            event = json.loads(body or "{}")
            return json.dumps(handler(event)).encode()
        except Exception as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def _modules_importing(source: Any, name: str) -> list[Any]:
    """Modules that did ``from source import name`` and so hold their own reference to it."""
    import sys

    original = getattr(source, name)
    return [m for m in list(sys.modules.values()) if m is not None and getattr(m, name, None) is original]


def apply_in_process_fixes(ses_message_id_domain: str) -> None:
    """These patch moto's classes; they only work when moto runs in this process (ThreadedMotoServer)."""
    global _applied
    if _applied:
        return
    fix_service_parameter_normalisation()
    fix_send_task_failure_cause()
    keep_simple_email_headers(ses_message_id_domain)
    reuse_task_clients()
    fix_state_entered_time_format()
    serialise_dynamodb_writes()
    run_lambda_handlers_in_process()
    _applied = True
