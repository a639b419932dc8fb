"""The error contract between Python and the ASL, read off every ASL file: each error name the workflow raises
or catches is declared in ``workflows/errors.py`` with its route, and each declared route is what the ASL
does. A new error that the ASL does not route (a transient one would silently fail the command) fails here,
and so does an ASL name that Python does not declare."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.asl.test_asl_static import all_states, load
from workflows import errors, names

ASL_FILES = sorted(names.ASL_DIR.glob("*.asl.json"))
MESSAGE_ASL = names.ASL_DIR / names.MESSAGE_WORKFLOW.asl_file
RUN_COMMAND = "Run command"


def _states(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state, _ in all_states(load(path)):
        yield name, state


def _ours(name: str) -> bool:
    return not name.startswith(errors.AWS_ERROR_PREFIXES)


def _names_in(path: Path) -> tuple[set[str], set[str]]:
    """(error names the ASL catches or retries, error names it raises) that are ours."""
    handled: set[str] = set()
    raised: set[str] = set()
    for _, state in _states(path):
        for rule in state.get("Retry", []) + state.get("Catch", []):
            handled |= {e for e in rule["ErrorEquals"] if _ours(e)}
        if state["Type"] == "Fail" and _ours(state.get("Error", "")):
            raised.add(state["Error"])
        if state["Type"] == "Pass" and isinstance(state.get("Parameters", {}).get("Error"), str):
            raised.add(state["Parameters"]["Error"])
    return handled, raised


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_error_name_the_asl_uses_is_declared_and_ends_in_error(path: Path) -> None:
    handled, raised = _names_in(path)
    declared = {route.error.__name__ for route in errors.COMMAND_ERROR_ROUTES}
    declared |= {error.__name__ for error in errors.RAISED_BY_WORKFLOW.values()}
    assert handled | raised <= declared, (handled | raised) - declared
    assert all(name.endswith("Error") for name in handled | raised)


def test_every_declared_route_is_in_the_asl_and_nothing_else_is() -> None:
    handled, raised = _names_in(MESSAGE_ASL)
    assert handled == {route.error.__name__ for route in errors.COMMAND_ERROR_ROUTES}
    assert raised == {error.__name__ for error in errors.RAISED_BY_WORKFLOW.values()}


def test_run_command_sends_each_error_where_the_table_says_and_retries_only_those_it_says() -> None:
    run = dict(_states(MESSAGE_ASL))[RUN_COMMAND]
    retried = {e for rule in run.get("Retry", []) for e in rule["ErrorEquals"] if _ours(e)}
    for route in errors.COMMAND_ERROR_ROUTES:
        name = route.error.__name__
        # Step Functions takes the first catcher that names the error (States.ALL names everything).
        target = next(c["Next"] for c in run["Catch"] if name in c["ErrorEquals"] or "States.ALL" in c["ErrorEquals"])
        assert target == route.branch, name
        assert any(name in c["ErrorEquals"] for c in run["Catch"]), f"{name} reaches {target} only via States.ALL"
        assert (name in retried) == route.retried, name


def test_the_states_that_raise_errors_raise_the_declared_ones() -> None:
    states = dict(_states(MESSAGE_ASL))
    for state_name, error in errors.RAISED_BY_WORKFLOW.items():
        state = states[state_name]
        raised = state["Error"] if state["Type"] == "Fail" else state["Parameters"]["Error"]
        assert raised == error.__name__, state_name


def _subclasses(base: type) -> set[type]:
    found = set(base.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_error_a_command_can_end_with_has_a_route() -> None:
    """What a worker, the reaper or the dead-letter consumer can fail a command's token with: everything but
    intake's rejections (no execution exists yet), the workflow's own, and the never-reported abandon."""
    not_reported = {errors.WorkerAbandonedError, *errors.RAISED_BY_WORKFLOW.values()}
    reported = {
        e
        for e in _subclasses(errors.WebOrdinaryError)
        if not issubclass(e, errors.RejectedMailError) and e not in not_reported and e.__module__ == errors.__name__
    } - {errors.PermanentError, errors.TransientError}
    routed = {route.error for route in errors.COMMAND_ERROR_ROUTES}
    assert reported == routed, {e.__name__ for e in reported ^ routed}


def test_a_transient_error_is_never_routed_to_the_failed_branch() -> None:
    for route in errors.COMMAND_ERROR_ROUTES:
        if issubclass(route.error, errors.TransientError):
            assert route.branch != "Record CommandFailed", route.error.__name__
        if issubclass(route.error, errors.PermanentError):
            assert route.branch == "Record CommandFailed" and not route.retried, route.error.__name__
