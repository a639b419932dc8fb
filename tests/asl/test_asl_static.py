"""Static checks on every asl/*.asl.json, offline: what moto's grammar-only validation would let through."""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import example_workflow_substitutions
from workflows import names
from workflows.models import CommandResult, ExecutionInput

ASL_FILES = sorted(names.ASL_DIR.glob("*.asl.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def all_states(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, the States map it lives in), including nested Parallel/Map states."""
    stack = [doc["States"]]
    while stack:
        states = stack.pop()
        for name, state in states.items():
            yield name, state, states
            stack.extend(branch["States"] for branch in state.get("Branches", []))
            if "ItemProcessor" in state:
                stack.append(state["ItemProcessor"]["States"])


def targets(state: dict[str, Any]) -> list[str]:
    out = [state[k] for k in ("Next", "Default") if k in state]
    out += [c["Next"] for c in state.get("Catch", [])]
    out += [c["Next"] for c in state.get("Choices", [])]
    return out


def test_there_is_a_message_workflow() -> None:
    assert names.ASL_DIR / names.MESSAGE_WORKFLOW.asl_file in ASL_FILES


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_tasks_have_timeouts_and_callbacks_have_heartbeats(path: Path) -> None:
    for name, state, _ in all_states(load(path)):
        if state["Type"] != "Task":
            continue
        assert {"TimeoutSeconds", "TimeoutSecondsPath"} & set(state), f"{name} has no timeout"
        if state["Resource"].endswith(".waitForTaskToken"):
            assert {"HeartbeatSeconds", "HeartbeatSecondsPath"} & set(state), f"{name} has no heartbeat"


# A Lambda task only where no direct service integration serves, each with its reason.
LAMBDA_TASKS = {
    "Send reply": "the words come from one Python module (workflows/replies.py), and a reply with a screenshot "
    "is MIME with an inline image from S3, which no Pass state or 256 KiB payload can carry",
}


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_jsonpath_only_and_lambda_tasks_only_where_nothing_else_serves(path: Path) -> None:
    doc = load(path)
    assert doc.get("QueryLanguage", "JSONPath") == "JSONPath"
    lambdas = set()
    for name, state, _ in all_states(doc):
        assert state.get("QueryLanguage", "JSONPath") == "JSONPath", name
        if ":lambda:" in state.get("Resource", ""):
            lambdas.add(name)
            assert state["Resource"] == "arn:aws:states:::lambda:invoke", name
            assert names.PLACEHOLDER_RE.fullmatch(state["Parameters"]["FunctionName"]), name
    assert lambdas <= set(LAMBDA_TASKS), f"{sorted(lambdas - set(LAMBDA_TASKS))}: use direct service integrations"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_transition_exists_and_every_state_is_reachable(path: Path) -> None:
    doc = load(path)
    seen: set[str] = set()
    todo = [doc["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        assert name in doc["States"], f"transition to missing state {name!r}"
        state = doc["States"][name]
        nxt = targets(state)
        assert nxt or state["Type"] in {"Succeed", "Fail"} or state.get("End"), f"{name} leads nowhere"
        todo.extend(nxt)
    assert seen == set(doc["States"]), f"unreachable: {set(doc['States']) - seen}"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_fail_state_says_what_and_why(path: Path) -> None:
    # Which error names are allowed (and where they lead) is tests/asl/test_error_table.py's.
    for name, state, _ in all_states(load(path)):
        if state["Type"] == "Fail":
            assert state.get("Error") and state.get("Cause"), name


def test_placeholders_are_exactly_the_substitution_map() -> None:
    text = (names.ASL_DIR / names.MESSAGE_WORKFLOW.asl_file).read_text()
    used = set(names.PLACEHOLDER_RE.findall(text))
    subs = example_workflow_substitutions()
    assert used <= set(subs), used - set(subs)
    unused = set(subs) - used
    assert unused <= {t.placeholder for t in names.TABLES}, unused
    json.loads(names.substitute(text, subs))  # still valid JSON after substitution


def test_paths_into_the_execution_input_exist_in_the_contract() -> None:
    """Every $.x read before a state writes x must be an ExecutionInput field (the handler's contract)."""
    doc = load(names.ASL_DIR / names.MESSAGE_WORKFLOW.asl_file)
    written = (
        {
            s["ResultPath"][2:].split(".")[0]
            for _, s, _ in all_states(doc)
            if isinstance(s.get("ResultPath"), str) and s["ResultPath"].startswith("$.")
        }
        | {
            c["ResultPath"][2:].split(".")[0]
            for _, s, _ in all_states(doc)
            for c in s.get("Catch", [])
            if c.get("ResultPath")
        }
        | {
            # A Pass whose Parameters replace its input (no ResultPath) writes each of their keys, except those it
            # only copies from its input ("x.$": "$.x"): those are still reads of the contract.
            key.removesuffix(".$")
            for _, s, _ in all_states(doc)
            if s["Type"] == "Pass" and "ResultPath" not in s
            for key, value in s.get("Parameters", {}).items()
            if value != f"$.{key.removesuffix('.$')}"
        }
    )
    fields = set(ExecutionInput.model_fields)
    # ResultSelector paths point into a task's result, not the state input.
    text = json.dumps({n: {k: v for k, v in s.items() if k != "ResultSelector"} for n, s, _ in all_states(doc)})
    read = set(re.findall(r'"\$\.([A-Za-z]+)', text)) | set(re.findall(r"[ (]\$\.([A-Za-z]+)", text))
    assert read - written <= fields, (read - written) - fields


def test_the_message_workflow_stays_within_40_states() -> None:
    # One state per recorded event, facts that belong together recorded together: new features add events,
    # not bookkeeping states (issue 21's target; the warm path's transitions are counted on the embedded stack).
    doc = load(names.ASL_DIR / names.MESSAGE_WORKFLOW.asl_file)
    assert len(doc["States"]) <= 40, len(doc["States"])


def test_each_end_a_worker_result_can_name_has_its_own_state() -> None:
    # CommandResult.outcome (done, stopped, paused) is what "Compose result reply" passes to "Outcome?".
    doc = load(names.ASL_DIR / names.MESSAGE_WORKFLOW.asl_file)
    routes = {c["StringEquals"]: c["Next"] for c in doc["States"]["Outcome?"]["Choices"]}
    ends = typing.get_args(CommandResult.model_fields["kind"].annotation)
    for kind in ends:
        result = CommandResult(commit="", branch="", filesChanged=[], previewUrl="", summary="", kind=kind)
        state = doc["States"][routes[result.outcome]]
        assert state["Type"] == "Succeed", (kind, routes[result.outcome])
    assert doc["States"]["Compose result reply"]["Parameters"]["outcome.$"] == "$.result.outcome"
