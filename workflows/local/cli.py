"""The ``webordinary`` command. Every command finds its stack through ``--state-dir``, else
``WEBORDINARY_STATE_DIR``, else ``.webordinary/``; every read command takes ``--json``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir or os.environ.get("WEBORDINARY_STATE_DIR") or ".webordinary")


def _print(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2, default=str) if getattr(args, "json", False) else text)


def _stack(args: argparse.Namespace) -> Any:
    from workflows.local.stack import StackInfo

    info = StackInfo.load(_state_dir(args))
    info.apply()
    return info


# --- commands ---------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from workflows.local.demo import demo

    # At a terminal the preview stays up to be looked at; with --json, or from a script, exit at once.
    keep = args.keep or (not args.json and sys.stdin.isatty() and sys.stdout.isatty())
    result, stack = demo(_state_dir(args), keep=keep, port=args.port)
    report = dict(result.report, ok=result.ok, problems=result.problems)
    reply = report.get("reply") or {}
    lines = [
        f"thread     {report.get('threadId')}",
        f"execution  {report.get('execution')}  {report.get('status')}",
        f"branch     {report.get('branch')}",
        f"commit     {report.get('commit')}",
        f"preview    {report.get('previewUrl')}  (HTTP {report.get('previewStatus')})",
        f"summary    {report.get('summary')}",
        "",
        "reply",
        f"  To:          {', '.join(reply.get('to', []))}",
        f"  Subject:     {reply.get('subject')}",
        f"  Message-ID:  {reply.get('messageId')}",
        f"  In-Reply-To: {reply.get('inReplyTo')}",
        f"  Reply-To:    {reply.get('replyTo')}",
        "",
        *("  " + line for line in str(reply.get("text", "")).splitlines()),
        "",
        "OK: the edit is committed, pushed, built and previewed, and the reply was sent."
        if result.ok
        else "FAILED:\n  " + "\n  ".join(result.problems),
    ]
    _print(args, report, "\n".join(lines))
    if keep and result.ok:
        print(
            f"\nThe preview stays up at {report.get('previewUrl')} until you press Ctrl-C "
            f"(the stack's state is in {stack.state_dir}).",
            file=sys.stderr,
        )
        _wait_for_signal()
        stack.stop()
    elif keep:
        stack.stop()
    return EXIT_OK if result.ok else EXIT_FAILED


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def cmd_local_up(args: argparse.Namespace) -> int:
    from workflows.local.stack import EmbeddedStack

    stack = EmbeddedStack(state_dir=_state_dir(args), port=args.port, warm_pool_size=args.warm_pool)
    info = stack.start()
    print(
        json.dumps(info.model_dump(), indent=2)
        if args.json
        else f"embedded stack running at {info.endpoint} (state in {info.stateDir}); Ctrl-C stops it",
        flush=True,
    )
    try:
        _wait_for_signal()
    finally:
        stack.stop()
    return EXIT_OK


def cmd_project_add(args: argparse.Namespace) -> int:
    from workflows import names, projects
    from workflows.adapters.aws import client

    info = _stack(args)
    repo = args.repo if "://" in args.repo or args.repo.startswith("git@") else str(Path(args.repo).resolve())
    try:
        project = projects.make_project(
            args.name,
            repo,
            args.allow.split(","),
            editor=args.editor,
            build_command=args.build,
            output_dir=args.output,
            default_branch=args.branch,
            agent_model=args.model,
            agent_max_turns=args.max_turns,
            monthly_budget_usd=args.budget_usd,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)
    address = f"{project.projectId}@{info.inboundDomain}"
    payload = {"project": project.projectId, "address": address, "config": project.model_dump()}
    _print(args, payload, f"project {project.projectId}: write to {address}")
    return EXIT_OK


def cmd_local_email(args: argparse.Namespace) -> int:
    from workflows.adapters.aws import client
    from workflows.local import operations

    info = _stack(args)
    raw = Path(args.file).read_bytes()
    outcome = operations.deliver_email(info, raw, ses_id=args.ses_id)
    payload: dict[str, Any] = {
        "accepted": outcome.accepted,
        "messageId": outcome.messageId,
        "threadId": outcome.threadId,
        "executionArn": outcome.executionArn,
        "duplicate": outcome.duplicate,
        "rejected": outcome.rejected,
    }
    if args.wait and outcome.executionArn:
        described = operations.wait_for_execution(client("stepfunctions"), outcome.executionArn, args.timeout)
        payload["status"] = described["status"]
        payload["output"] = json.loads(described["output"]) if described.get("output") else None
    text = (
        f"accepted: thread {outcome.threadId}, execution {outcome.executionName}"
        + (" (duplicate)" if outcome.duplicate else "")
        + (f" -> {payload['status']}" if "status" in payload else "")
        if outcome.accepted
        else f"rejected: {outcome.rejected}"
    )
    _print(args, payload, text)
    return EXIT_OK if outcome.accepted and payload.get("status", "SUCCEEDED") == "SUCCEEDED" else EXIT_FAILED


def cmd_project_set(args: argparse.Namespace) -> int:
    from workflows import names, projects
    from workflows.adapters.aws import client
    from workflows.adapters.stores.projects import DynamoProjects

    _stack(args)
    store = DynamoProjects(client("dynamodb"), names.PROJECTS_TABLE.local_name)
    current = store.get(args.name)
    if current is None:
        print(f"error: no project {args.name!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        changed = projects.with_settings(current, args.settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    store.save(changed)
    payload = {"project": changed.projectId, "config": changed.model_dump()}
    _print(args, payload, f"project {changed.projectId}: " + ", ".join(args.settings))
    return EXIT_OK


def cmd_threads(args: argparse.Namespace) -> int:
    from workflows.adapters.aws import client
    from workflows.events import fold
    from workflows.local import operations

    _stack(args)
    dynamodb = client("dynamodb")
    threads = []
    for row in operations.list_threads(dynamodb):
        # What the product knows of a thread is the fold of its events; the table row adds the subject.
        state = fold(row.threadId, operations.thread_events(dynamodb, row.threadId))
        threads.append(
            {
                **state.model_dump(exclude={"messages", "lastEvent"}),
                "status": state.status,
                "working": state.working,
                "subject": row.subject,
                "createdAt": row.createdAt,
            }
        )
    text = "\n".join(
        f"{t['threadId']}  {t['projectId']:<16} {t['branch']:<16} {t['status']:<14} {t['lastCommit'][:7]:<8} "
        f"${t['costUsd']:<8.4f} {t['subject']}" + (f"  ({t['working']})" if t["working"] else "")
        for t in threads
    )
    _print(args, threads, text or "no threads yet")
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    from workflows.adapters.aws import client
    from workflows.events import describe
    from workflows.local import operations

    _stack(args)
    events = operations.thread_events(client("dynamodb"), args.thread)
    # What each command cost the workflow: its execution's state transitions, counted from its history.
    sfn = client("stepfunctions")
    transitions = {
        e.execution: len(operations.trace(sfn, _execution_arn(e.execution))["steps"])
        for e in events
        if e.type == "CommandSucceeded" and e.execution
    }
    payload = [
        e.model_dump() | ({"transitions": transitions[e.execution]} if e.type == "CommandSucceeded" else {})
        for e in events
    ]
    text = "\n".join(
        f"{e.at:<26} {e.type:<20} {e.execution}  {describe(e)}"
        + (f", {transitions[e.execution]} state transitions" if e.type == "CommandSucceeded" else "")
        for e in events
    )
    _print(args, payload, text or f"no events for thread {args.thread}")
    return EXIT_OK if events else EXIT_FAILED


def _execution_arn(name_or_arn: str) -> str:
    from workflows import names
    from workflows.local.stack import ACCOUNT, REGION

    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{names.MESSAGE_WORKFLOW.local_name}:{name_or_arn}"


def cmd_trace(args: argparse.Namespace) -> int:
    from workflows.adapters.aws import client
    from workflows.local import operations

    _stack(args)
    traced = operations.trace(client("stepfunctions"), _execution_arn(args.execution))
    lines = [
        f"{traced['name']}  {traced['status']}  ({traced['historyEvents']} history events)",
        "path: " + " -> ".join(traced["path"]),
        "",
    ]
    for step in traced["steps"]:
        mark = "ok" if step["outcome"] == "ok" else step["outcome"]
        lines.append(f"  {step['enteredMs']:>6} ms  {step['state']:<34} {mark}")
        if step.get("cause"):
            lines.append(f"             {step['cause']}")
    _print(args, traced, "\n".join(lines))
    return EXIT_OK


def cmd_outbox(args: argparse.Namespace) -> int:
    from workflows.local import operations

    info = _stack(args)
    sent = operations.outbox(info)
    text = "\n\n".join(
        f"To: {', '.join(m['to'])}\nSubject: {m['subject']}\nIn-Reply-To: {m['inReplyTo']}\n\n{m['text']}" for m in sent
    )
    _print(args, sent, text or "no replies sent yet")
    return EXIT_OK


def cmd_redrive(args: argparse.Namespace) -> int:
    from workflows.local import operations

    info = _stack(args)
    started = operations.redrive(info, None if args.all else args.execution)
    text = "\n".join(f"redriven {s['from']} as {s['execution']}" for s in started)
    _print(args, started, text or "nothing to redrive")
    return EXIT_OK if started else EXIT_FAILED


def cmd_bench(args: argparse.Namespace) -> int:
    from workflows.local.bench import run_bench

    report = run_bench(
        _state_dir(args), sequential=args.sequential, concurrent=args.concurrent, load=args.load, pairs=args.pairs
    )
    _print(args, report, report["text"])
    return EXIT_OK if report["ok"] else EXIT_FAILED


def cmd_bench_sites(args: argparse.Namespace) -> int:
    import io
    from contextlib import redirect_stdout

    from workflows.local.bench_sites import print_report, run_bench_sites

    report = run_bench_sites()
    text = io.StringIO()
    with redirect_stdout(text):
        print_report(report)
    _print(args, report, text.getvalue().rstrip())
    return EXIT_OK


# --- parser -----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webordinary", description="Edit your website by email.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", help="where the embedded stack keeps its state (default .webordinary/)")
    common.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", parents=[common], help="run the main job end to end on the embedded stack")
    p.add_argument(
        "--keep", action="store_true", help="keep the stack and the preview up until Ctrl-C (the default at a terminal)"
    )
    p.add_argument("--port", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    local = sub.add_parser("local", help="the embedded stack").add_subparsers(dest="local_command", required=True)
    p = local.add_parser("up", parents=[common], help="run the embedded stack in the foreground")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--warm-pool", type=int, default=1)
    p.set_defaults(func=cmd_local_up)
    p = local.add_parser("email", parents=[common], help="deliver a raw message exactly as SES would")
    p.add_argument("file")
    p.add_argument("--wait", action="store_true", help="wait for the execution to end")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--ses-id", help="the SES message id (default: derived from the file's bytes)")
    p.set_defaults(func=cmd_local_email)

    project = sub.add_parser("project", help="projects").add_subparsers(dest="project_command", required=True)
    p = project.add_parser("add", parents=[common], help="register a site")
    p.add_argument("name")
    p.add_argument("--repo", required=True, help="path or URL of the site's git repository")
    p.add_argument("--allow", required=True, help="allowed sender addresses, comma-separated")
    p.add_argument("--editor", default="replace", help="replace | claude-code | command:CMD")
    p.add_argument("--model", default="", help="claude-code: the model (default: the CLI's own)")
    p.add_argument("--max-turns", type=int, default=30, help="claude-code: turns allowed for one change")
    p.add_argument(
        "--budget-usd",
        type=float,
        default=None,
        help="claude-code: dollars the agent may spend per calendar month (none: no cap); "
        "when it runs out mid-change, the change pauses and the reply asks for CONTINUE",
    )
    p.add_argument("--build", default="", help="build command, run in the checkout")
    p.add_argument(
        "--output",
        default="",
        help="build output directory (default: the first of dist, build, out, _site, public the build writes)",
    )
    p.add_argument("--branch", default="", help="the production branch (default: the repository's own default branch)")
    p.set_defaults(func=cmd_project_add)
    p = project.add_parser("set", parents=[common], help="change a site's settings: key=value ...")
    p.add_argument("name")
    p.add_argument("settings", nargs="+", metavar="key=value", help="e.g. editor=claude-code agentMaxTurns=40")
    p.set_defaults(func=cmd_project_set)

    for name, func, helptext in (
        ("threads", cmd_threads, "list threads"),
        ("outbox", cmd_outbox, "replies sent"),
    ):
        sub.add_parser(name, parents=[common], help=helptext).set_defaults(func=func)
    p = sub.add_parser("events", parents=[common], help="a thread's event log")
    p.add_argument("thread")
    p.set_defaults(func=cmd_events)
    p = sub.add_parser("trace", parents=[common], help="the path an execution took")
    p.add_argument("execution", help="execution ARN or name")
    p.set_defaults(func=cmd_trace)
    p = sub.add_parser("redrive", parents=[common], help="replay dead-lettered commands as new executions")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("execution", nargs="?", help="the dead-lettered execution's name or ARN")
    target.add_argument("--all", action="store_true", help="every dead-lettered command")
    p.set_defaults(func=cmd_redrive)
    p = sub.add_parser("bench", parents=[common], help="latency and memory figures on the embedded stack")
    p.add_argument("--sequential", type=int, default=10)
    p.add_argument("--concurrent", type=int, default=10)
    p.add_argument("--load", type=int, default=100, help="messages in the load run with interrupts (0: skip)")
    p.add_argument("--pairs", type=int, default=20, help="project+user pairs in the load run")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser(
        "bench-sites", parents=[common], help="real-site figures: a 1,000-file site's git+upload, installs, pictures"
    )
    p.set_defaults(func=cmd_bench_sites)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from workflows.local.stack import StackNotRunningError

    try:
        code: int = args.func(args)
    except StackNotRunningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
