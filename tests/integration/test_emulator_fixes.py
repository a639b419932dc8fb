# ruff: noqa: E501 -- the probe script runs verbatim in a subprocess; its long lines stay readable as one call each
"""Each work-around in workflows/local/emulator_fixes.py exists because of a moto bug. These tests run an
UNPATCHED moto in a fresh interpreter and assert the bug is still there: when one fails, moto changed, and
the matching fix should be deleted (or adapted). The patched behaviour is exercised by every other
integration test."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

PROBE = textwrap.dedent(
    r"""
    import json, os, socket, time, logging
    import boto3, requests
    from moto.server import ThreadedMotoServer
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    os.environ["MOTO_PORT"] = str(port)
    logging.disable(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False); server.start()
    ep = f"http://127.0.0.1:{port}"
    requests.post(ep + "/moto-api/config", json={"stepfunctions": {"execute_state_machine": True},
                                                 "lambda": {"use_docker": False}}).raise_for_status()
    kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    sfn, ecs, ec2, sqs, ses = (boto3.client(n, **kw) for n in ("stepfunctions", "ecs", "ec2", "sqs", "sesv2"))
    role = "arn:aws:iam::123456789012:role/r"
    out = {}

    def run(name, definition, inp="{}"):
        arn = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
        return sfn.start_execution(stateMachineArn=arn, name=name + "-1", input=inp)["executionArn"]

    def wait(arn):
        for _ in range(400):
            d = sfn.describe_execution(executionArn=arn)
            if d["status"] != "RUNNING":
                return d
            time.sleep(0.05)
        return d

    # P1: PascalCase parameters of ecs:runTask are not normalised.
    cluster = ecs.create_cluster(clusterName="c")["cluster"]["clusterArn"]
    td = ecs.register_task_definition(family="f", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", containerDefinitions=[{"name": "w", "image": "i", "memory": 512}])["taskDefinition"]["taskDefinitionArn"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    sg = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    d = wait(run("ecs", {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask",
        "TimeoutSeconds": 30, "Parameters": {"Cluster": cluster, "TaskDefinition": td, "LaunchType": "FARGATE",
        "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": [subnet], "SecurityGroups": [sg]}}}, "End": True}}}))
    out["ecs"] = {"status": d["status"], "cause": d.get("cause")}

    # P2: SendTaskFailure drops the cause.
    q = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = run("token", {"StartAt": "T", "States": {"T": {"Type": "Task", "TimeoutSeconds": 30,
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": q, "MessageBody": {"t.$": "$$.Task.Token"}}, "End": True}}})
    for _ in range(100):
        msgs = sqs.receive_message(QueueUrl=q, WaitTimeSeconds=1).get("Messages", [])
        if msgs:
            break
    sfn.send_task_failure(taskToken=json.loads(msgs[0]["Body"])["t"], error="SomeError", cause="the reason")
    d = wait(arn)
    out["send_task_failure"] = {"status": d["status"], "error": d.get("error"), "cause": d.get("cause")}

    # ECS task status advances on every DescribeTasks.
    task = ecs.run_task(cluster="c", taskDefinition=td, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg]}})["tasks"][0]["taskArn"]
    out["ecs_status"] = [ecs.describe_tasks(cluster="c", tasks=[task])["tasks"][0]["lastStatus"] for _ in range(3)]

    # SESv2 Simple content: Reply-To and custom headers are not kept.
    ses.create_email_identity(EmailIdentity="example.test")
    ses.send_email(FromEmailAddress="a@example.test", Destination={"ToAddresses": ["b@example.org"]},
        ReplyToAddresses=["c@example.test"], Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}},
        "Headers": [{"Name": "In-Reply-To", "Value": "<x@y>"}]}})
    data = requests.get(ep + "/moto-api/data.json").json()["ses"]
    out["ses_simple"] = {"raw": data.get("RawMessage", []), "stored": json.dumps(data.get("Message", []))}
    # SESv2 Raw content: stored as sent, without the Message-ID SES assigns.
    ses.send_email(FromEmailAddress="a@example.test", Destination={"ToAddresses": ["b@example.org"]},
        Content={"Raw": {"Data": b"From: a@example.test\r\nTo: b@example.org\r\nSubject: r\r\n\r\nbody\r\n"}})
    raws = requests.get(ep + "/moto-api/data.json").json()["ses"].get("RawMessage", [])
    out["ses_raw"] = [m.get("raw_data", "") for m in raws]
    # $$.State.EnteredTime: its format, and whether a Retry of the state keeps it.
    rq = sqs.create_queue(QueueName="retry")["QueueUrl"]
    arn = run("entered", {"StartAt": "T", "States": {"T": {"Type": "Task", "TimeoutSeconds": 30,
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": rq, "MessageBody": {"t.$": "$$.Task.Token", "e.$": "$$.State.EnteredTime"}},
        "Retry": [{"ErrorEquals": ["Again"], "IntervalSeconds": 1, "MaxAttempts": 1}], "End": True}}})
    entered = []
    for _ in range(2):  # the first attempt, then its retry
        for _ in range(100):
            msgs = sqs.receive_message(QueueUrl=rq, WaitTimeSeconds=1).get("Messages", [])
            if msgs:
                break
        body = json.loads(msgs[0]["Body"])
        sqs.delete_message(QueueUrl=rq, ReceiptHandle=msgs[0]["ReceiptHandle"])
        entered.append(body["e"])
        if len(entered) == 1:
            sfn.send_task_failure(taskToken=body["t"], error="Again", cause="once more")
    out["entered_time"] = {"attempts": entered}

    # P4: lambda:invoke without Docker echoes the payload: no code runs, and the function need not exist.
    d = wait(run("lambda", {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "TimeoutSeconds": 30, "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:nobody",
        "Payload": {"ping": 1}}, "End": True}}}))
    out["lambda"] = {"status": d["status"], "output": json.loads(d.get("output") or "null")}

    # DynamoDB transactions deep-copy every table they touch, unlocked, while the threaded server writes.
    import inspect
    from moto.dynamodb.models import DynamoDBBackend
    source = inspect.getsource(DynamoDBBackend.transact_write_items)
    out["ddb_transaction"] = {"copies_tables": "copy.deepcopy(" in source and "self.tables[table_name]" in source,
                              "locks": "lock" in source.lower()}

    server.stop()
    print("PROBE" + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def unpatched() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=180)
    line = next((x for x in done.stdout.splitlines() if x.startswith("PROBE")), None)
    assert line, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(line[len("PROBE") :])


def test_p1_ecs_run_task_parameters_are_not_normalised(unpatched: dict) -> None:
    assert unpatched["ecs"]["status"] == "FAILED"
    assert "Cluster" in (unpatched["ecs"]["cause"] or "")


def test_p2_send_task_failure_loses_its_cause(unpatched: dict) -> None:
    assert unpatched["send_task_failure"]["status"] == "FAILED"
    assert unpatched["send_task_failure"]["error"] == "SomeError"
    assert unpatched["send_task_failure"]["cause"] in (None, "")


def test_ecs_task_status_advances_on_every_describe(unpatched: dict) -> None:
    statuses = unpatched["ecs_status"]
    assert len(set(statuses)) == 3, statuses


def test_sesv2_simple_send_drops_reply_to_and_headers(unpatched: dict) -> None:
    assert unpatched["ses_simple"]["raw"] == []
    assert "c@example.test" not in unpatched["ses_simple"]["stored"]
    assert "<x@y>" not in unpatched["ses_simple"]["stored"]


def test_state_entered_time_is_not_in_the_format_aws_writes(unpatched: dict) -> None:
    # AWS: "2026-12-04T21:42:12.123Z"; moto: Python's isoformat with microseconds and "+00:00".
    first = unpatched["entered_time"]["attempts"][0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", first), first


def test_state_entered_time_holds_across_a_retry_of_the_state(unpatched: dict) -> None:
    # Not a bug: what the event log's order key relies on, as on AWS (a Retry happens inside the state).
    first, second = unpatched["entered_time"]["attempts"]
    assert first == second


def test_dynamodb_transactions_copy_whole_tables_without_a_lock(unpatched: dict) -> None:
    # The copy races the threaded server's other writes ("dictionary changed size during iteration", HTTP 500).
    assert unpatched["ddb_transaction"] == {"copies_tables": True, "locks": False}


def test_p4_lambda_invoke_runs_no_code_without_docker(unpatched: dict) -> None:
    # workflows/local/emulator_fixes.run_lambda_handlers_in_process runs our handlers instead.
    assert unpatched["lambda"]["status"] == "SUCCEEDED"
    assert unpatched["lambda"]["output"]["Payload"] == {"ping": 1}


def test_sesv2_raw_send_gets_no_message_id(unpatched: dict) -> None:
    # emulator_fixes.keep_simple_email_headers gives it SES's <{id}@{domain}>, as AWS does.
    (raw,) = unpatched["ses_raw"]
    assert raw.startswith("From: a@example.test") and "message-id" not in raw.lower()
