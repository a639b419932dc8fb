"""``webordinary bench``: latency, orchestration share, state transitions and peak memory on the embedded
stack, for N sequential and N concurrent messages with the ``replace`` editor. Prints figures; asserts
nothing about speed."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workflows import names, projects
from workflows.adapters.aws import client
from workflows.adapters.stores.ownership import DynamoOwnership
from workflows.local import operations
from workflows.local.agents import SLOW_EDIT
from workflows.local.demo import create_demo_repository, demo_email
from workflows.local.stack import EmbeddedStack, StackInfo

BENCH_PROJECT = "bench"


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class MemorySampler:
    """Peak resident memory of the stack: this process (moto, the handler) plus every worker process."""

    def __init__(self, stack: EmbeddedStack) -> None:
        self.stack = stack
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            total = _rss_kib(os.getpid()) + sum(_rss_kib(w.process.pid) for w in list(self.stack.workers.values()))
            self.peak_kib = max(self.peak_kib, total)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _one(info: StackInfo, sender: str, n: int) -> dict[str, Any]:
    started = time.monotonic()
    raw = demo_email(f"{BENCH_PROJECT}@{info.inboundDomain}", sender=sender).replace(
        b"Subject: Change the phone wording", f"Subject: Bench message {n}".encode()
    )
    outcome = operations.deliver_email(info, raw, ses_id=f"bench-{sender.split('@')[0]}-{n}-{time.time_ns()}")
    assert outcome.executionArn is not None, outcome
    sfn = client("stepfunctions")
    described = operations.wait_for_execution(sfn, outcome.executionArn, timeout=300)
    latency = time.monotonic() - started
    history = sfn.get_execution_history(executionArn=outcome.executionArn)["events"]
    output = json.loads(described.get("output") or "{}")
    timings = output.get("result", {}).get("timings", {})
    return {
        "status": described["status"],
        "latency": latency,
        "agentBuildSeconds": (timings.get("editMs", 0) + timings.get("buildMs", 0)) / 1000,
        "workerSeconds": timings.get("totalMs", 0) / 1000,
        "transitions": sum(1 for e in history if e["type"].endswith("StateEntered")),
        "historyEvents": len(history),
    }


def _summary(label: str, runs: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    latencies = sorted(r["latency"] for r in runs)
    agent = sum(r["agentBuildSeconds"] for r in runs)
    total = sum(r["latency"] for r in runs)
    p95_index = max(0, round(0.95 * len(latencies)) - 1)
    return {
        "mode": label,
        "messages": len(runs),
        "succeeded": sum(r["status"] == "SUCCEEDED" for r in runs),
        "wallSeconds": round(wall, 2),
        "latencyP50": round(statistics.median(latencies), 3),
        "latencyP95": round(latencies[p95_index], 3),
        "orchestrationShare": round(1 - agent / total, 3) if total else None,
        "transitionsPerExecution": round(statistics.mean(r["transitions"] for r in runs), 1),
        "historyEventsMax": max(r["historyEvents"] for r in runs),
    }


def _events_of(thread: str) -> list[Any]:
    return operations.thread_events(client("dynamodb"), thread)


def _wait(predicate: Any, timeout: float = 120) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError("benchmark step did not happen in time")
        time.sleep(0.05)
    return time.monotonic() - started


def _add(info: StackInfo, name: str, senders: list[str], editor: str) -> None:
    repo = create_demo_repository(Path(info.stateDir) / "repos" / name)
    project = projects.make_project(name, str(repo), senders, editor=editor, build_command="python3 build.py")
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)


def _send(info: StackInfo, project: str, instruction: str, sender: str, thread: str | None = None) -> Any:
    to = f"{project}+{thread}@{info.inboundDomain}" if thread else f"{project}@{info.inboundDomain}"
    raw = demo_email(to, instruction=instruction, sender=sender).replace(
        b"Subject: Change the phone wording", f"Subject: bench {time.time_ns()}".encode()
    )
    return operations.deliver_email(info, raw, ses_id=f"bench-{time.time_ns()}")


def measure_interrupt_latency(info: StackInfo, runs: int = 3) -> list[float]:
    """Newer message received -> the old agent stopped, its partial work committed and pushed (the
    CommandInterrupted event is recorded right after)."""
    _add(info, "interrupts", ["owner@example.com"], f"command:python3 {SLOW_EDIT} --sleep 60")
    latencies = []
    for n in range(runs):
        first = _send(info, "interrupts", f'replace "Call us" with "Ring us {n}"', "owner@example.com")
        thread = first.threadId
        _wait(lambda: "CommandDispatched" in [e.type for e in _events_of(thread)])  # noqa: B023 (waited on at once)
        time.sleep(1.0)  # let the agent get going
        started = time.monotonic()
        second = _send(info, "interrupts", "STOP", "owner@example.com", thread=first.threadId)
        _wait(lambda: "CommandInterrupted" in [e.type for e in _events_of(thread)])  # noqa: B023
        latencies.append(time.monotonic() - started)
        for outcome in (first, second):
            operations.wait_for_execution(client("stepfunctions"), outcome.executionArn, 120)
    return latencies


def measure_worker_loss_recovery(stack: EmbeddedStack, info: StackInfo) -> dict[str, float]:
    """Kill -9 the worker mid-edit: time to notice (WorkerLost) and to finish on a new worker."""
    import signal

    marker = Path(info.stateDir) / "loss-marker"
    _add(info, "loss", ["owner@example.com"], f"command:python3 {SLOW_EDIT} --sleep 60 --once-marker {marker}")
    outcome = _send(info, "loss", 'replace "Call us" with "Ring us"', "owner@example.com")
    _wait(marker.exists)
    time.sleep(0.5)
    row = DynamoOwnership(client("dynamodb"), names.OWNERSHIP_TABLE.local_name).get(
        "loss", projects.user_id_for("owner@example.com")
    )
    assert row is not None
    owner = row.workerId
    victim = next(w for w in stack.workers.values() if owner == names.worker_id_for_task(w.task_arn))
    killed = time.monotonic()
    victim.process.send_signal(signal.SIGKILL)
    noticed = _wait(lambda: "WorkerLost" in [e.type for e in _events_of(outcome.threadId)])
    operations.wait_for_execution(client("stepfunctions"), outcome.executionArn, 180)
    return {"noticedSeconds": round(noticed, 2), "recoveredSeconds": round(time.monotonic() - killed, 2)}


def load_run(info: StackInfo, messages: int = 100, pairs: int = 20, seed: int = 7) -> dict[str, Any]:
    """``messages`` over ``pairs`` project+user pairs; about a third are follow-ups on a thread that may still
    be running (interrupts), the rest new threads. Every message must end in exactly one outcome."""
    import random

    rng = random.Random(seed)
    senders = [f"load{i}@example.com" for i in range(pairs)]
    _add(info, "load", senders, f"command:python3 {SLOW_EDIT} --sleep 1.5")
    words = ["Call us", "Fresh", "bread", "morning", "cake", "Quay", "harbour", "order"]
    threads: dict[str, list[str]] = {s: [] for s in senders}
    sent: list[Any] = []
    started = time.monotonic()

    def one(i: int) -> Any:
        sender = senders[i % pairs]
        follow_up = threads[sender] and rng.random() < 0.35
        thread = rng.choice(threads[sender]) if follow_up else None
        word = rng.choice(words)
        outcome = _send(info, "load", f'replace "{word}" with "{word} {i}"', sender, thread=thread)
        if outcome.threadId and not follow_up:
            threads[sender].append(outcome.threadId)
        return outcome

    with ThreadPoolExecutor(max_workers=8) as pool:
        for batch in range(0, messages, pairs):
            sent.extend(pool.map(one, range(batch, min(batch + pairs, messages))))
            time.sleep(rng.uniform(0.5, 2.0))
    sfn = client("stepfunctions")
    ends: dict[str, str] = {}
    for outcome in sent:
        described = operations.wait_for_execution(sfn, outcome.executionArn, 600)
        path = operations.trace(sfn, outcome.executionArn)["path"]
        ends[outcome.executionArn] = path[-1] if described["status"] != "RUNNING" else "RUNNING"
    replies = Counter(r["threadId"] for r in operations.outbox(info))
    per_message_replies: Counter[str] = Counter()
    for outcome in sent:
        events = [e for e in _events_of(outcome.threadId) if e.eventId.startswith(outcome.messageId + "#")]
        per_message_replies[outcome.messageId] = sum(e.type == "ReplySent" for e in events)
    counts = Counter(ends.values())
    return {
        "messages": len(sent),
        "pairs": pairs,
        "wallSeconds": round(time.monotonic() - started, 1),
        "completed": counts.get("Done", 0),
        "interrupted": counts.get("Superseded", 0),
        "stopped": counts.get("Stopped", 0),
        "failed": counts.get("Command failed", 0),
        "deadLettered": counts.get("Dead-lettered", 0),
        "lost": sum(1 for m in sent if per_message_replies[m.messageId] == 0) + counts.get("RUNNING", 0),
        "duplicated": sum(1 for n in per_message_replies.values() if n > 1),
        "repliesSent": sum(replies.values()),
    }


def run_bench(
    state_dir: Path, sequential: int = 10, concurrent: int = 10, load: int = 100, pairs: int = 20
) -> dict[str, Any]:
    stack = EmbeddedStack(
        state_dir=state_dir,
        warm_pool_size=1,
        worker_idle_seconds=60,
        worker_heartbeat_seconds=1,
        tuning=names.WorkflowTuning(command_heartbeat_seconds=6, claim_timeout_seconds=2),
    )
    info = stack.start()
    info.apply()
    try:
        repo = create_demo_repository(Path(info.stateDir) / "repos")
        senders = [f"user{i}@example.com" for i in range(max(concurrent, 1))]
        project = projects.make_project(BENCH_PROJECT, str(repo), senders, build_command="python3 build.py")
        projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)
        with MemorySampler(stack) as memory:
            _one(info, senders[0], -1)  # warm-up: first clone, first claim
            started = time.monotonic()
            seq = [_one(info, senders[0], n) for n in range(sequential)]
            seq_wall = time.monotonic() - started
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=max(concurrent, 1)) as pool:
                conc = list(pool.map(lambda n: _one(info, senders[n], 1000 + n), range(concurrent)))
            conc_wall = time.monotonic() - started
            results = [
                _summary("sequential", seq, seq_wall),
                _summary(f"concurrent ({concurrent} users)", conc, conc_wall),
            ]
            interrupts = measure_interrupt_latency(info)
            loss = measure_worker_loss_recovery(stack, info)
            loaded = load_run(info, load, pairs) if load else None
    finally:
        stack.stop()
    definition_states = len(json.loads((names.ASL_DIR / names.MESSAGE_WORKFLOW.asl_file).read_text())["States"])
    ok = all(r["succeeded"] == r["messages"] for r in results)
    ok = ok and (loaded is None or (loaded["lost"] == 0 and loaded["duplicated"] == 0))
    lines = [
        f"{'mode':<24}{'msgs':>5}{'ok':>5}{'p50 s':>8}{'p95 s':>8}{'orch.':>7}{'trans.':>8}{'wall s':>8}",
        *(
            f"{r['mode']:<24}{r['messages']:>5}{r['succeeded']:>5}{r['latencyP50']:>8}{r['latencyP95']:>8}"
            f"{r['orchestrationShare']:>7}{r['transitionsPerExecution']:>8}{r['wallSeconds']:>8}"
            for r in results
        ),
        f"states in the message workflow's definition: {definition_states}; trans. = state transitions per "
        "execution, counted from the execution histories (sequential = the warm happy path)",
        f"peak memory of the stack (moto + handler + workers): {memory.peak_kib / 1024:.0f} MiB",
        "orch. = share of end-to-end latency not spent in the editor and the build",
        "",
        "interrupt latency (newer message received -> old agent stopped, WIP committed and pushed): "
        + ", ".join(f"{x:.2f} s" for x in interrupts),
        f"worker loss (kill -9 mid-edit; the reaper sees the task stop, 6 s heartbeat as backstop): noticed after "
        f"{loss['noticedSeconds']} s, "
        f"finished on a new worker after {loss['recoveredSeconds']} s",
    ]
    if loaded is not None:
        lines.append(
            f"load: {loaded['messages']} messages over {loaded['pairs']} pairs in {loaded['wallSeconds']} s: "
            f"completed {loaded['completed']}, interrupted {loaded['interrupted']}, failed {loaded['failed']}, "
            f"dead-lettered {loaded['deadLettered']}, lost {loaded['lost']}, duplicated {loaded['duplicated']}"
        )
    return {
        "ok": ok,
        "results": results,
        "definitionStates": definition_states,
        "peakMemoryMiB": round(memory.peak_kib / 1024),
        "interruptLatencySeconds": [round(x, 3) for x in interrupts],
        "workerLoss": loss,
        "load": loaded,
        "text": "\n".join(lines),
    }
