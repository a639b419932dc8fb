"""The claude-code editor against a fake ``claude`` that speaks the real CLI's headless protocol line for line
(tests/fakes/claude), and the protocol's parser on its own."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from container.worker.agent_stream import Result, SystemInit, ToolUse, Transcript, parse_line, progress
from container.worker.cancel import Cancellation, CommandCancelledError, Interruption
from container.worker.editors import AGENT_TOOLS, AgentConfig, Allowance, ClaudeCodeEditor
from container.worker.progress import ProgressEvents
from workflows.adapters.eventlog import InMemoryEventLog
from workflows.errors import AgentApiError, AgentBudgetError, AgentCrashedError, AgentTurnLimitError
from workflows.events import describe, fold
from workflows.models import Command

FAKE = str(Path(__file__).parents[1] / "fakes" / "claude")
KEY = "sk-ant-test-agent-key-0000"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    site = tmp_path / "pair" / "checkout"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<h1>Harbour Bakery</h1>\n")
    (site / "contact.html").write_text("<h1>Contact</h1>\n")
    return site


def editor(**overrides: object) -> ClaudeCodeEditor:
    fields: dict[str, object] = {"executable": FAKE, "api_key": KEY}
    fields.update(overrides)
    return ClaudeCodeEditor(AgentConfig(**fields), timeout=30)  # type: ignore[arg-type]


# --- the protocol ----------------------------------------------------------------------------------------------


def test_each_line_of_the_stream_is_typed_and_other_lines_are_skipped() -> None:
    init = parse_line('{"type":"system","subtype":"init","session_id":"s-1","model":"m","tools":["Read"]}')
    assert isinstance(init, SystemInit) and init.session_id == "s-1"
    result = parse_line(
        '{"type":"result","subtype":"success","is_error":false,"num_turns":2,"session_id":"s-1",'
        '"total_cost_usd":0.5,"result":"Done."}'
    )
    assert isinstance(result, Result) and result.total_cost_usd == 0.5 and result.result == "Done."
    for skipped in (
        "",
        "Warning: something",
        "[1,2]",
        '{"type":"stream_event"}',
        "{not json",
        '{"type":"result","num_turns":"x"}',
    ):
        assert parse_line(skipped) is None, skipped


def test_tool_uses_become_short_coalesced_progress_lines() -> None:
    transcript = Transcript()
    use = {"type": "tool_use", "name": "Edit", "input": {"file_path": "/w/checkout/src/pages/contact.astro"}}
    line = json.dumps({"type": "assistant", "message": {"content": [use]}})
    assert transcript.feed(line, "/w/checkout") == "editing src/pages/contact.astro"
    assert transcript.feed(line, "/w/checkout") is None  # the same step again is not news
    # A path outside the checkout is never shown; the verb is.
    outside = ToolUse.model_validate({"type": "tool_use", "name": "Read", "input": {"file_path": "/etc/passwd"}})
    assert progress(outside, "/w/checkout") == "reading"
    assert transcript.progress == ["editing src/pages/contact.astro"]


# --- the editor with the fake CLI ------------------------------------------------------------------------------


def test_a_plain_words_instruction_edits_the_site_and_reports_cost_turns_and_session(checkout: Path) -> None:
    outcome = editor().run(checkout, "Make the headings blue", set())
    assert (checkout / "index.html").read_text() == '<h1 style="color: blue">Harbour Bakery</h1>\n'
    assert outcome.summary.startswith("Made the main heading blue on 2 page(s)")
    assert outcome.cost_usd == pytest.approx(0.0123) and outcome.turns == 3 and outcome.agent_session
    assert outcome.progress == ("editing contact.html", "editing index.html")
    # The CLI's sessions live beside the checkout (the pair's volume), never in it.
    assert (checkout.parent / ".claude" / "projects" / f"{outcome.agent_session}.jsonl").is_file()
    assert not any(path.name.startswith(".claude") for path in checkout.iterdir())


@pytest.mark.parametrize(
    ("marker", "error"),
    [
        ("[fake:api-error]", AgentApiError),
        ("[fake:max-turns]", AgentTurnLimitError),
        ("[fake:budget]", AgentBudgetError),
        ("[fake:crash]", AgentCrashedError),
    ],
)
def test_each_way_the_agent_can_fail_is_a_named_error(checkout: Path, marker: str, error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        editor(budget_usd=0.25).run(checkout, f"Make the headings blue {marker}", set())
    assert type(raised.value) is error


def test_a_monthly_allowance_running_out_pauses_the_change_with_its_work_and_charges_every_run(checkout: Path) -> None:
    charged: list[float] = []
    allowance = Allowance(budget_usd=20.0, spent_usd=19.75, continue_usd=5.0)
    paused = editor(budget_usd=allowance.left_usd, allowance=allowance, charge=charged.append).run(
        checkout, "Make the headings blue [fake:budget]", set()
    )
    assert paused.paused and paused.agent_session and paused.summary == "editing contact.html"
    assert (checkout / "contact.html").read_text().startswith('<h1 style="color: blue">')  # work so far, kept
    assert (checkout / "index.html").read_text() == "<h1>Harbour Bakery</h1>\n"
    done = editor(allowance=allowance, charge=charged.append).run(checkout, "Make the headings blue", set())
    assert not done.paused
    assert charged == [pytest.approx(0.25), pytest.approx(0.0123)]  # each run's cost, as its result said
    assert Allowance(budget_usd=20.0, spent_usd=19.995, continue_usd=5.0).exhausted and not allowance.exhausted


def test_the_cli_refuses_stream_json_without_verbose_like_the_real_one(checkout: Path) -> None:
    done = subprocess.run([FAKE, "-p", "hi", "--output-format", "stream-json"], capture_output=True, text=True)
    assert done.returncode == 1 and "requires --verbose" in done.stderr


def test_every_flag_we_pass_is_in_the_argv_the_cli_reads() -> None:
    argv = editor(model="claude-sonnet-4-5", budget_usd=1.5).argv("Make it blue", resume="s-1")
    assert argv[:3] == [FAKE, "-p", "Make it blue"]
    for flag in ("--output-format", "--verbose", "--max-turns", "--permission-mode", "--allowedTools",
                 "--append-system-prompt", "--model", "--max-budget-usd", "--resume"):  # fmt: skip
        assert flag in argv, flag
    assert argv[argv.index("--allowedTools") + 1] == ",".join(AGENT_TOOLS)
    assert "Bash" not in AGENT_TOOLS  # the agent edits files; it runs nothing


def test_a_follow_up_resumes_the_session_and_a_lost_session_starts_afresh(checkout: Path) -> None:
    first = editor().run(checkout, "Make the headings blue", set())
    (checkout / "index.html").write_text("<h1>Harbour Bakery</h1>\n")
    again = editor(resume_session=first.agent_session).run(checkout, "Make the headings blue", set())
    assert again.agent_session == first.agent_session
    (checkout / "index.html").write_text("<h1>Harbour Bakery</h1>\n")
    fresh = editor(resume_session="no-such-session").run(checkout, "Make the headings blue", set())
    assert fresh.agent_session not in ("", "no-such-session", first.agent_session)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent, the fake, is gone; init reaps it).
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_cancelling_kills_the_agent_and_every_process_it_started(checkout: Path) -> None:
    cancel = Cancellation()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            editor().run(checkout, "Make the headings blue [fake:hang]", set(), cancel=cancel)
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    pid_file = checkout / "fake-child.pid"
    deadline = time.monotonic() + 20
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)
    cancel.cancel(Interruption(by_message="m-2", by_thread="t2"))
    worker.join(timeout=20)
    assert failure and isinstance(failure[0], CommandCancelledError)
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)  # the agent's own child died with it: no tool process survives


def test_the_agent_sees_its_own_key_and_no_other_secret(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "AWS_ACCESS_KEY_ID": "AKIAWORKERSECRET",
        "AWS_SECRET_ACCESS_KEY": "worker-secret-value",
        "AWS_SESSION_TOKEN": "worker-session-token",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/worker",
        "WEBORDINARY_GIT_TOKEN": "ghp_workergittoken",
        "WEBORDINARY_CLAIM_QUEUE_URL": "https://sqs.example/claims",
        "TASK_TOKEN": "worker-task-token",
        "GITHUB_TOKEN": "ghp_another",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    editor().run(checkout, "Tell me your environment [fake:env]", set())
    seen = (checkout / "agent-env.txt").read_text()
    for name, value in secrets.items():
        assert name not in seen and value not in seen, name
    assert f"ANTHROPIC_API_KEY={KEY}" in seen
    assert f"HOME={checkout.parent / '.agent-home'}" in seen


def test_the_prompt_points_at_the_sites_guidance_and_tells_a_fresh_session_the_history(checkout: Path) -> None:
    (checkout / "AGENTS.md").write_text("Use British spelling.\n")
    history = ("Made the main heading blue on 2 page(s).", "Replaced the text on 1 page(s).")
    fresh = editor(history=history).prompt(checkout, "Make the footer green", fresh=True)
    assert fresh.startswith("Make the footer green")
    assert "guidance for whoever edits it in AGENTS.md" in fresh
    assert "Earlier changes in this conversation" in fresh and history[1] in fresh
    resumed = editor(history=history).prompt(checkout, "Make the footer green", fresh=False)
    assert "Earlier changes" not in resumed  # the resumed session remembers them itself


def test_a_lost_session_is_replaced_by_a_fresh_one_that_is_told_the_history(checkout: Path) -> None:
    history = ("Made the main heading blue on 2 page(s).",)
    outcome = editor(resume_session="gone-session", history=history).run(checkout, "Make the headings blue", set())
    log = checkout.parent / ".claude" / "projects" / f"{outcome.agent_session}.jsonl"
    prompt = json.loads(log.read_text().splitlines()[0])["prompt"]
    assert history[0] in prompt


COMMAND = Command(
    messageId="m-1",
    threadId="abcdefgh",
    projectId="bakery",
    userId="alice-1a2b3c",
    branch="thread-abcdefgh",
    messageKey="messages/m-1.json",
    executionName="abcdefgh-m-1",
)


def test_progress_is_told_while_the_agent_works_and_recorded_as_events(checkout: Path) -> None:
    log = InMemoryEventLog()
    command = COMMAND
    recorder = ProgressEvents(log, command)
    cancel = Cancellation()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            editor(on_progress=recorder).run(checkout, "Make the headings blue [fake:hang]", set(), cancel=cancel)
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 20
    while not log.read("abcdefgh") and time.monotonic() < deadline:
        time.sleep(0.05)
    (event,) = log.read("abcdefgh")  # recorded while the agent still runs
    assert worker.is_alive() and event.type == "AgentProgress" and event.data == {"step": "running a command", "n": 1}
    assert fold("abcdefgh", log.read("abcdefgh")).working == "running a command"
    cancel.cancel(Interruption(by_message="m-2", by_thread="abcdefgh"))
    worker.join(timeout=20)
    recorder.close()
    assert failure and isinstance(failure[0], CommandCancelledError)


def test_progress_events_are_bounded_and_never_fail_the_command() -> None:
    log = InMemoryEventLog()
    command = COMMAND
    recorder = ProgressEvents(log, command, limit=3)
    for n in range(5):
        recorder(f"editing page-{n}.html")
    recorder.close()
    assert [e.data["step"] for e in log.read("abcdefgh")] == [
        "editing page-0.html",
        "editing page-1.html",
        "editing page-2.html",
    ]
    assert describe(log.read("abcdefgh")[0]) == "1. editing page-0.html"

    class Broken(InMemoryEventLog):
        def append(self, *args: Any, **kwargs: Any) -> Any:
            raise OSError("the event log is down")

    broken = ProgressEvents(Broken(), command)
    broken("editing index.html")  # logged, not raised
    broken.close()
