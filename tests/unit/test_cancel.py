from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from container.worker.cancel import Cancellation, CommandCancelledError, Interruption
from container.worker.editors import CommandEditor, run_shell, sanitised_env

BY = Interruption(by_message="m2", by_thread="ab3k9x2m")


def _cancel_after(cancel: Cancellation, seconds: float) -> None:
    threading.Timer(seconds, cancel.cancel, args=(BY,)).start()


def test_a_cancelled_step_gets_sigint_first_as_ctrl_c_would(tmp_path: Path) -> None:
    cancel = Cancellation()
    _cancel_after(cancel, 0.3)
    script = "trap 'echo interrupted; exit 0' INT; trap 'echo terminated; exit 0' TERM; sleep 30 & wait"
    result = run_shell(script, tmp_path, sanitised_env(), timeout=60, cancel=cancel)
    assert result.cancelled and result.returncode == 0 and result.stdout_lines == ["interrupted"]


def test_each_line_of_output_is_seen_as_it_comes(tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []
    started = time.monotonic()
    run_shell("echo one; sleep 1; echo two", tmp_path, sanitised_env(), timeout=60,
              on_line=lambda line: seen.append((line, time.monotonic() - started)))  # fmt: skip
    assert [line for line, _ in seen] == ["one", "two"]
    assert seen[0][1] < seen[1][1] - 0.5  # "one" was seen before the program went on to sleep


def test_a_cancelled_step_gets_sigterm_and_stops_promptly(tmp_path: Path) -> None:
    cancel = Cancellation()
    _cancel_after(cancel, 0.3)
    started = time.monotonic()
    result = run_shell("sleep 30", tmp_path, sanitised_env(), timeout=60, cancel=cancel)
    assert time.monotonic() - started < 3
    assert result.cancelled and not result.timed_out


def test_a_step_ignoring_sigint_and_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    cancel = Cancellation()
    _cancel_after(cancel, 0.3)
    started = time.monotonic()
    result = run_shell("trap '' INT TERM; sleep 30", tmp_path, sanitised_env(), timeout=60, cancel=cancel, grace=0.5)
    assert 0.7 < time.monotonic() - started < 4
    assert result.cancelled and result.returncode is None


def test_the_editor_turns_a_cancellation_into_commandcancellederror(tmp_path: Path) -> None:
    cancel = Cancellation()
    _cancel_after(cancel, 0.3)
    with pytest.raises(CommandCancelledError) as raised:
        CommandEditor("sleep 30").run(tmp_path, "anything", set(), cancel=cancel)
    assert raised.value.interruption == BY


def test_only_the_first_interruption_counts() -> None:
    cancel = Cancellation()
    cancel.cancel(BY)
    cancel.cancel(Interruption(by_message="m3", by_thread="x"))
    assert cancel.interruption == BY
    with pytest.raises(CommandCancelledError):
        cancel.check()


def test_an_uncancelled_check_does_nothing() -> None:
    Cancellation().check()
