from __future__ import annotations

import re

import pytest

from workflows import names, threads
from workflows.projects import make_project, user_id_for


def test_new_thread_ids_are_stable_per_mail_and_project_and_use_only_the_alphabet() -> None:
    a = threads.new_thread_id("bakery", "ses-1")
    assert a == threads.new_thread_id("bakery", "ses-1")
    assert a != threads.new_thread_id("bakery", "ses-2")
    assert a != threads.new_thread_id("florist", "ses-1")
    ids = {threads.new_thread_id("p", f"m{i}") for i in range(2000)}
    assert len(ids) == 2000
    assert all(threads.is_thread_id(i) and len(i) == 8 and set(i) <= set(threads.ALPHABET) for i in ids)
    assert not set("01ilou") & set(threads.ALPHABET)


@pytest.mark.parametrize("bad", ["", "abc", "ABCDEFGH", "abcdefg1", "abcdefgh\n", "../etc/x", "abcdefghi"])
def test_thread_ids_accept_only_their_own_alphabet(bad: str) -> None:
    assert not threads.is_thread_id(bad)
    with pytest.raises(ValueError):
        threads.branch_for(bad)


def test_recipient_split_trusts_only_wellformed_plus_parts() -> None:
    domain = "mail.webordinary.test"
    assert threads.split_recipient("Bakery+ab3k9x2m@Mail.WebOrdinary.test", domain) == ("bakery", "ab3k9x2m")
    assert threads.split_recipient("bakery@mail.webordinary.test", domain) == ("bakery", None)
    assert threads.split_recipient("bakery+../../x@mail.webordinary.test", domain) == ("bakery", None)
    assert threads.split_recipient("bakery@elsewhere.test", domain) is None
    assert threads.split_recipient("not-an-address", domain) is None
    assert threads.plus_address("bakery", "ab3k9x2m", domain) == "bakery+ab3k9x2m@mail.webordinary.test"


def test_execution_names_are_deterministic_valid_and_bounded() -> None:
    name = threads.execution_name("ab3k9x2m", "0100018b-abc/def:1")
    assert name == threads.execution_name("ab3k9x2m", "0100018b-abc/def:1")
    assert name.startswith("ab3k9x2m-") and re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name)
    long = threads.execution_name("ab3k9x2m", "x" * 200)
    assert len(long) <= 80 and long != threads.execution_name("ab3k9x2m", "x" * 199)


def test_work_queue_names_are_valid_sqs_names() -> None:
    assert names.work_queue_name("bakery", "alice-1a2b3c") == "webordinary-work-bakery--alice-1a2b3c"
    long = names.work_queue_name("p" * 40, "u" * 40)
    assert len(long) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", long)


def test_substitute_replaces_every_placeholder_and_refuses_unknown_ones() -> None:
    assert names.substitute('{"a": "${X}", "b.$": "$$.Task.Token"}', {"X": "1"}) == '{"a": "1", "b.$": "$$.Task.Token"}'
    with pytest.raises(KeyError, match="Y"):
        names.substitute("${X} ${Y}", {"X": "1"})


def test_projects_map_each_allowed_sender_to_a_stable_user() -> None:
    project = make_project("bakery", "/repo.git", ["Alice@Example.com", " bob@example.com "])
    assert project.user_for("ALICE@example.com") == user_id_for("alice@example.com")
    assert project.user_for("bob@example.com") == user_id_for("bob@example.com")
    assert project.user_for("eve@example.com") is None
    assert user_id_for("alice@example.com") != user_id_for("alice@example.org")
    with pytest.raises(ValueError):
        make_project("Bad Name", "/repo.git", ["a@b.c"])
    with pytest.raises(ValueError):
        make_project("bakery", "/repo.git", ["not-an-address"])


def test_project_settings_change_by_key_and_are_validated_as_a_whole() -> None:
    import pytest as _pytest

    from workflows.projects import make_project, with_settings

    project = make_project("bakery", "/repo.git", ["alice@example.com"])
    changed = with_settings(project, ["editor=claude-code", "agentMaxTurns=40", "undoWords=undo, take it back"])
    assert (changed.editor, changed.agentMaxTurns, changed.undoWords) == ("claude-code", 40, ["undo", "take it back"])
    assert changed.senders == project.senders  # untouched
    for bad, words in [
        (["colour=blue"], "key one of"),
        (["agentMaxTurns=0"], "agentMaxTurns"),
        (["agentMaxTurns=x"], "whole number"),
        (["editor"], "key=value"),
    ]:
        with _pytest.raises(ValueError, match=words):
            with_settings(project, bad)


def test_a_monthly_budget_is_set_in_dollars_and_switched_off_with_none() -> None:
    from workflows.projects import make_project, with_settings

    project = make_project("bakery", "/repo.git", ["alice@example.com"], monthly_budget_usd=20)
    assert project.monthlyBudgetUsd == 20.0 and project.continueUsd == 5.0
    changed = with_settings(project, ["monthlyBudgetUsd=$12.50", "continueUsd=2", "continueWords=continue, more"])
    assert (changed.monthlyBudgetUsd, changed.continueUsd, changed.continueWords) == (12.5, 2.0, ["continue", "more"])
    assert with_settings(project, ["monthlyBudgetUsd=none"]).monthlyBudgetUsd is None
    for bad, words in [
        (["monthlyBudgetUsd=lots"], "dollars"),
        (["continueUsd=0"], "continueUsd"),
        (["monthlyBudgetUsd=-1"], "monthlyBudgetUsd"),
    ]:
        with pytest.raises(ValueError, match=words):
            with_settings(project, bad)


@pytest.mark.parametrize(
    ("said", "meant"),
    [
        ("CONTINUE", "continue"),
        ("Continue please.", "continue"),
        ("carry on!", "continue"),
        ("continue with the footer and make it green", None),  # an instruction
        ("PUBLISH", "publish"),
        ("undo", "undo"),
    ],
)
def test_continue_is_a_keyword_only_when_it_is_the_whole_message(said: str, meant: str | None) -> None:
    from workflows.commands import keyword

    assert keyword(said) == meant
