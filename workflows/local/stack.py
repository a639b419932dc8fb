"""The embedded stack: the whole system on one machine, offline.

moto runs in this process (server mode on loopback, ``execute_state_machine`` on) and is provisioned from
:mod:`workflows.names`; the state machine is created from ``asl/message.asl.json`` with the same
substitutions CDK uses; and this module plays ECS: every task the workflow starts with ``ecs:runTask`` becomes
a real worker process with the task's environment, and the task is stopped when the process exits. A warm
pool (an ECS service on AWS) is a set of such tasks kept running. Previews are public objects in the preview
bucket, readable over plain HTTP from moto.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
import requests
from pydantic import BaseModel

from workflows import names
from workflows.adapters.stores.ownership import DynamoOwnership
from workflows.local import emulator_fixes
from workflows.local.preview_server import PreviewServer
from workflows.reaper import reap_stopped_task

REGION = "us-east-1"
ACCOUNT = "123456789012"
INBOUND_DOMAIN = "mail.webordinary.test"
SES_MESSAGE_ID_DOMAIN = "email.amazonses.com"  # us-east-1
WARM_POOL_STARTED_BY = "webordinary-warm-pool"
STACK_FILE = "stack.json"
log = logging.getLogger("webordinary.local")


class StackInfo(BaseModel):
    """What a running stack writes to ``{state_dir}/stack.json`` so other commands can find it."""

    endpoint: str
    port: int
    pid: int
    stateDir: str
    region: str = REGION
    inboundDomain: str = INBOUND_DOMAIN
    stateMachineArn: str
    previewBaseUrl: str
    previewOrigin: str = ""  # "http://{label}.preview.localhost:{port}": the preview server's URL template
    siteOrigin: str = ""  # "http://{label}.site.localhost:{port}": the live sites ({label} = the project id)
    claimQueueUrl: str
    deadLetterQueueUrl: str
    clusterArn: str

    def client_env(self) -> dict[str, str]:
        """Point any boto3 client (ours or the product's) at this stack."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def inbound_env(self) -> dict[str, str]:
        """The inbound Lambda's environment (CDK sets the same variables)."""
        env = self.client_env() | _table_env()
        env.update(
            {
                "WEBORDINARY_INBOUND_DOMAIN": self.inboundDomain,
                names.MAIL_BUCKET.env: names.MAIL_BUCKET.local_name,
                names.MESSAGE_WORKFLOW.env: self.stateMachineArn,
            }
        )
        return env

    def reply_env(self) -> dict[str, str]:
        """The reply Lambda's environment (CDK sets the same variables)."""
        return self.client_env() | {
            names.REPLY_FUNCTION.env_ses_domain: SES_MESSAGE_ID_DOMAIN,
            names.PREVIEW_BUCKET.env: names.PREVIEW_BUCKET.local_name,
        }

    def worker_env(self, idle_seconds: float, heartbeat_seconds: float) -> dict[str, str]:
        """The worker task definition's environment (CDK sets the same variables)."""
        env = _table_env()
        env.update(
            {
                names.MAIL_BUCKET.env: names.MAIL_BUCKET.local_name,
                names.PREVIEW_BUCKET.env: names.PREVIEW_BUCKET.local_name,
                names.CLAIM_QUEUE.env: self.claimQueueUrl,
                "WEBORDINARY_PREVIEW_BASE_URL": self.previewBaseUrl,
                "WEBORDINARY_PREVIEW_ORIGIN": self.previewOrigin,
                "WEBORDINARY_SITE_ORIGIN": self.siteOrigin,
                "WEBORDINARY_WORKSPACE_ROOT": str(Path(self.stateDir) / "workspaces"),
                "WEBORDINARY_IDLE_SECONDS": str(idle_seconds),
                "WEBORDINARY_HEARTBEAT_SECONDS": str(heartbeat_seconds),
                "WEBORDINARY_POLL_SECONDS": "2",
                "WEBORDINARY_WORK_DLQ_ARN": f"arn:aws:sqs:{self.region}:{ACCOUNT}:{names.WORK_DLQ.local_name}",
            }
        )
        return env

    def apply(self) -> None:
        """Make this process's AWS clients talk to the stack (for the CLI and in-process tests)."""

        _use_environment(self.inbound_env())

    @classmethod
    def load(cls, state_dir: Path) -> StackInfo:
        path = state_dir / STACK_FILE
        if not path.exists():
            raise StackNotRunningError(
                f"no embedded stack is running for {state_dir} (start one with 'webordinary local up')"
            )
        info = cls.model_validate_json(path.read_text())
        try:
            requests.get(f"{info.endpoint}/moto-api/", timeout=2)
        except requests.RequestException as exc:
            raise StackNotRunningError(f"the stack recorded in {path} is not answering ({exc})") from exc
        return info


class StackNotRunningError(RuntimeError):
    pass


def _use_environment(env: dict[str, str]) -> None:
    """Point this process's AWS clients at the stack. The cached clients are rebuilt only when something
    changed: a client costs ~0.3 s to build, and every delivery (and every in-process Lambda) applies this."""
    from workflows.adapters.aws import reset_clients

    if any(os.environ.get(name) != value for name, value in env.items()):
        os.environ.update(env)
        reset_clients()


def _table_env() -> dict[str, str]:
    return {t.env: t.local_name for t in names.TABLES}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WorkerProcess:
    task_arn: str
    process: subprocess.Popen[bytes]
    log_file: IO[bytes]


@dataclass
class EmbeddedStack:
    state_dir: Path
    port: int = 0
    warm_pool_size: int = 1
    worker_idle_seconds: float = 120.0
    worker_heartbeat_seconds: float = 5.0
    tuning: names.WorkflowTuning = field(default_factory=names.WorkflowTuning)
    # What CDK gives the worker task as ECS secrets (env name -> value), e.g. the agent's API key and the git
    # token: put in each worker's environment at start, never in the task definition.
    worker_secrets: dict[str, str] = field(default_factory=dict)
    info: StackInfo | None = None
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    _server: Any = None
    _previews: PreviewServer | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _runner: threading.Thread | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> StackInfo:
        from moto.server import ThreadedMotoServer

        self.state_dir = self.state_dir.resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Keep everything the stack writes out of any enclosing git checkout's status.
        (self.state_dir / ".gitignore").write_text("*\n")
        existing = self.state_dir / STACK_FILE
        if existing.exists():
            try:
                StackInfo.load(self.state_dir)
                raise RuntimeError(f"a stack is already running for {self.state_dir}")
            except StackNotRunningError:
                existing.unlink()
        port = self.port or _free_port()
        # moto's ASL interpreter calls back into the server at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(port)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        endpoint = f"http://127.0.0.1:{port}"
        requests.post(
            f"{endpoint}/moto-api/config",
            # Lambda without Docker: the simple backend, whose invoke emulator_fixes points at our handlers.
            json={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
            timeout=10,
        ).raise_for_status()
        emulator_fixes.apply_in_process_fixes(SES_MESSAGE_ID_DOMAIN)
        emulator_fixes.freeze_ecs_task_status(endpoint)
        self.info = self._provision(endpoint, port)
        self._serve_lambdas(self.info)
        (self.state_dir / STACK_FILE).write_text(self.info.model_dump_json(indent=2))
        self._runner = threading.Thread(target=self._run_ecs, name="local-ecs", daemon=True)
        self._runner.start()
        return self.info

    def _serve_lambdas(self, info: StackInfo) -> None:
        """The functions the workflow invokes run in this process, on moto's request threads, with the
        environment CDK gives them (the same values for every invocation, so setting them is idempotent)."""
        from lambdas.reply.handler import handler as reply_handler
        from workflows.local.operations import HandlerStdout, LocalLambdaContext, capture_handler_logs

        _use_environment(info.reply_env())
        log_path = Path(info.stateDir) / "logs" / "reply.log"
        capture_handler_logs("webordinary-reply", log_path)

        def reply(event: dict[str, Any]) -> Any:
            context = LocalLambdaContext(
                function_name=names.REPLY_FUNCTION.local_name,
                invoked_function_arn=names.function_arn(names.REPLY_FUNCTION, REGION, ACCOUNT),
                log_group_name=f"/aws/lambda/{names.REPLY_FUNCTION.local_name}",
            )
            with HandlerStdout.capture(log_path):
                return reply_handler(event, context)

        emulator_fixes.LAMBDA_HANDLERS[names.REPLY_FUNCTION.local_name] = reply

    def stop(self) -> None:
        self._stop.set()
        if self._runner is not None:
            self._runner.join(timeout=10)
        for worker in list(self.workers.values()):
            _terminate(worker.process)
            worker.log_file.close()
        self.workers.clear()
        if self.info is not None:
            (self.state_dir / STACK_FILE).unlink(missing_ok=True)
        if self._previews is not None:
            self._previews.stop()
            self._previews = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            assert self.info is not None
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.info.endpoint,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self._clients[service]

    # --- provisioning (everything from workflows.names) -------------------------------------------------

    def _provision(self, endpoint: str, port: int) -> StackInfo:
        kw: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        ddb, s3, sqs, sfn, ecs, ec2, ses = (
            boto3.client(s, **kw) for s in ("dynamodb", "s3", "sqs", "stepfunctions", "ecs", "ec2", "sesv2")
        )
        self._clients.update({"dynamodb": ddb, "s3": s3, "sqs": sqs, "stepfunctions": sfn, "ecs": ecs})
        for table in names.TABLES:
            create_table(ddb, table)
        for bucket in names.BUCKETS:
            s3.create_bucket(Bucket=bucket.local_name)
        # Each preview at its own origin, as CloudFront's wildcard domain serves them on AWS.
        self._previews = PreviewServer(s3, names.PREVIEW_BUCKET.local_name).start()
        dlq_url = sqs.create_queue(QueueName=names.WORK_DLQ.local_name)["QueueUrl"]
        dead_letter_url = sqs.create_queue(QueueName=names.DEAD_LETTER_QUEUE.local_name)["QueueUrl"]
        claim_url = sqs.create_queue(QueueName=names.CLAIM_QUEUE.local_name, Attributes={"VisibilityTimeout": "30"})[
            "QueueUrl"
        ]
        self._work_dlq_url = dlq_url
        ses.create_email_identity(EmailIdentity=INBOUND_DOMAIN)

        cluster_arn = ecs.create_cluster(clusterName=names.WORKER_CLUSTER)["cluster"]["clusterArn"]
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if s.get("DefaultForAz")][:2]
        security_group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
        preview_base = f"{endpoint}/{names.PREVIEW_BUCKET.local_name}/{names.PREVIEW_PREFIX.rstrip('/')}"
        machine_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{names.MESSAGE_WORKFLOW.local_name}"
        info = StackInfo(
            endpoint=endpoint,
            port=port,
            pid=os.getpid(),
            stateDir=str(self.state_dir),
            stateMachineArn=machine_arn,
            previewBaseUrl=preview_base,
            previewOrigin=self._previews.origin_template,
            siteOrigin=self._previews.site_template,
            claimQueueUrl=claim_url,
            deadLetterQueueUrl=dead_letter_url,
            clusterArn=cluster_arn,
        )
        task_definition_arn = ecs.register_task_definition(
            family=names.WORKER_TASK_FAMILY,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="1024",
            memory="2048",
            containerDefinitions=[
                {
                    "name": names.WORKER_CONTAINER,
                    "image": "webordinary-worker:local",
                    "memory": 2048,  # moto requires it even for Fargate
                    "essential": True,
                    "environment": [
                        {"name": k, "value": v}
                        for k, v in info.worker_env(self.worker_idle_seconds, self.worker_heartbeat_seconds).items()
                    ],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        self._network = {
            "awsvpcConfiguration": {
                "subnets": subnets,
                "securityGroups": [security_group],
                "assignPublicIp": "DISABLED",
            }
        }
        self._task_definition_arn = task_definition_arn
        substitutions = names.message_workflow_substitutions(
            table_names={t.placeholder: t.local_name for t in names.TABLES},
            claim_queue_url=claim_url,
            dead_letter_queue_url=dead_letter_url,
            cluster_arn=cluster_arn,
            task_definition_arn=task_definition_arn,
            subnets=(subnets[0], subnets[1]),
            security_group=security_group,
            tuning=self.tuning,
            reply_function_arn=names.function_arn(names.REPLY_FUNCTION, REGION, ACCOUNT),
        )
        definition = names.substitute((names.ASL_DIR / names.MESSAGE_WORKFLOW.asl_file).read_text(), substitutions)
        sfn.create_state_machine(
            name=names.MESSAGE_WORKFLOW.local_name,
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{names.MESSAGE_WORKFLOW.local_name}",
            type="STANDARD",
        )
        sfn.list_state_machines()  # pays moto's ~1 s lazy import of the ASL parser now, not on the first mail
        return info

    # --- playing ECS ---------------------------------------------------------------------------------------

    def _run_ecs(self) -> None:
        ecs = self.client("ecs")
        assert self.info is not None
        while not self._stop.is_set():
            try:
                self._ecs_tick(ecs)
                self._consume_work_dlq()
            except Exception:  # the runner must outlive a bad tick; the next one retries
                log.exception("local ECS runner tick failed")
            self._stop.wait(0.05)

    def _consume_work_dlq(self) -> None:
        """Plays the dead-letter consumer Lambda (an SQS event source on AWS)."""
        from workflows.dead_letters import fail_waiting_execution

        sqs = self.client("sqs")
        for message in sqs.receive_message(
            QueueUrl=self._work_dlq_url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", []):
            count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0))
            fail_waiting_execution(self.client("stepfunctions"), message["Body"], count)
            sqs.delete_message(QueueUrl=self._work_dlq_url, ReceiptHandle=message["ReceiptHandle"])

    def _ecs_tick(self, ecs: Any) -> None:
        assert self.info is not None
        running = set(ecs.list_tasks(cluster=names.WORKER_CLUSTER, desiredStatus="RUNNING")["taskArns"])
        new = sorted(running - set(self.workers))
        if new:
            for task in ecs.describe_tasks(cluster=names.WORKER_CLUSTER, tasks=new)["tasks"]:
                self._start_worker(task)
        for arn, worker in list(self.workers.items()):
            code = worker.process.poll()
            if code is not None:
                worker.log_file.close()
                del self.workers[arn]
                reason = f"Essential container exited ({code})"
                ecs.stop_task(cluster=names.WORKER_CLUSTER, task=arn, reason=reason)
                # Plays EventBridge's "ECS Task State Change: STOPPED" -> the reaper Lambda.
                ownership = DynamoOwnership(self.client("dynamodb"), names.OWNERSHIP_TABLE.local_name)
                reap_stopped_task(ownership, self.client("stepfunctions"), arn, reason)
        warm = ecs.list_tasks(cluster=names.WORKER_CLUSTER, startedBy=WARM_POOL_STARTED_BY, desiredStatus="RUNNING")
        for _ in range(self.warm_pool_size - len(warm["taskArns"])):
            # The next tick starts its process, by the same path as the tasks the workflow starts.
            ecs.run_task(
                cluster=names.WORKER_CLUSTER,
                taskDefinition=self._task_definition_arn,
                launchType="FARGATE",
                startedBy=WARM_POOL_STARTED_BY,
                networkConfiguration=self._network,
                count=1,
            )

    def _start_worker(self, task: dict[str, Any]) -> None:
        assert self.info is not None
        arn = task["taskArn"]
        if arn in self.workers:
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEBORDINARY_", "MOTO_"))}
        env.update(self.info.client_env())  # on AWS the task role provides credentials
        for container in self.client("ecs").describe_task_definition(taskDefinition=task["taskDefinitionArn"])[
            "taskDefinition"
        ]["containerDefinitions"]:
            env.update({e["name"]: e["value"] for e in container.get("environment", [])})
        for override in task.get("overrides", {}).get("containerOverrides", []):
            env.update({e["name"]: e["value"] for e in override.get("environment", [])})
        env.update(self.worker_secrets)
        task_id = arn.rsplit("/", 1)[-1]
        env["WEBORDINARY_WORKER_ID"] = names.worker_id_for_task(arn)
        env["PYTHONUNBUFFERED"] = "1"
        logs = self.state_dir / "logs"
        logs.mkdir(exist_ok=True)
        log_file = (logs / f"worker-{task_id}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "container.worker"],
            env=env,
            cwd=str(names.REPO_ROOT),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers[arn] = WorkerProcess(task_arn=arn, process=process, log_file=log_file)


def create_table(ddb: Any, table: names.TableSpec) -> None:
    keys = [table.partition_key] + ([table.sort_key] if table.sort_key else [])
    attributes = {a.name: a for a in keys} | {i.sort_key.name: i.sort_key for i in table.local_indexes}
    kwargs: dict[str, Any] = {
        "TableName": table.local_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": table.partition_key.name, "KeyType": "HASH"}]
        + ([{"AttributeName": table.sort_key.name, "KeyType": "RANGE"}] if table.sort_key else []),
        "AttributeDefinitions": [{"AttributeName": a.name, "AttributeType": a.type} for a in attributes.values()],
    }
    if table.local_indexes:
        kwargs["LocalSecondaryIndexes"] = [
            {
                "IndexName": i.name,
                "KeySchema": [
                    {"AttributeName": table.partition_key.name, "KeyType": "HASH"},
                    {"AttributeName": i.sort_key.name, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for i in table.local_indexes
        ]
    ddb.create_table(**kwargs)
    if table.ttl_attribute:
        ddb.update_time_to_live(
            TableName=table.local_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )


def _terminate(process: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)
