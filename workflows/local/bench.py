"""``webordinary bench``: latency, orchestration share, state transitions and peak memory on the embedded
stack, for N sequential and N concurrent messages with the ``replace`` editor. Prints figures; asserts
nothing about speed."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workflows import names, projects
from workflows.aws import client
from workflows.local import operations
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


def run_bench(state_dir: Path, sequential: int = 10, concurrent: int = 10) -> dict[str, Any]:
    stack = EmbeddedStack(state_dir=state_dir, warm_pool_size=1, worker_idle_seconds=60)
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
        results = [_summary("sequential", seq, seq_wall), _summary(f"concurrent ({concurrent} users)", conc, conc_wall)]
    finally:
        stack.stop()
    ok = all(r["succeeded"] == r["messages"] for r in results)
    lines = [
        f"{'mode':<24}{'msgs':>5}{'ok':>5}{'p50 s':>8}{'p95 s':>8}{'orch.':>7}{'trans.':>8}{'wall s':>8}",
        *(
            f"{r['mode']:<24}{r['messages']:>5}{r['succeeded']:>5}{r['latencyP50']:>8}{r['latencyP95']:>8}"
            f"{r['orchestrationShare']:>7}{r['transitionsPerExecution']:>8}{r['wallSeconds']:>8}"
            for r in results
        ),
        f"peak memory of the stack (moto + handler + workers): {memory.peak_kib / 1024:.0f} MiB",
        "orch. = share of end-to-end latency not spent in the editor and the build",
    ]
    return {"ok": ok, "results": results, "peakMemoryMiB": round(memory.peak_kib / 1024), "text": "\n".join(lines)}
