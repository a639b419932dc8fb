"""The words a site owner reads: every reply and notice, rendered from the facts the workflow holds, in plain
language, with nothing an engineer would recognise as an internal."""

from __future__ import annotations

import pytest

from workflows import errors, replies
from workflows.errors import (
    AttachmentTooLargeError,
    EmptyInstructionError,
    InstructionTooLongError,
    MalformedMailError,
    RejectedMailError,
    SenderNotAllowedError,
    TooLargeError,
    TooManyAttachmentsError,
)
from workflows.replies import BudgetFacts, FailureFacts, InterruptionFacts, ReplyFacts, ResultFacts

COMMIT = "3f2a9c41d0b7e6a5f4c3b2a1908f7e6d5c4b3a29"
TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/app/container/worker/job.py", line 171, in run_command\n'
    "    raise BuildFailedError(log)\n"
    "container.worker.build.BuildFailedError: npm ERR! code ELIFECYCLE"
)
BUDGET = BudgetFacts(spentUsd=20.0, allowanceUsd=20.0, continueUsd=5.0)
HOSTILE_CAUSES = [
    TRACE,
    f"fatal: unable to access 'https://git.example/site.git/': commit {COMMIT} on thread-abcdefgh",
    "WorkerCrashedError: <container.worker.job.Job object at 0x7f3a2b1c>",
    "arn:aws:states:us-east-1:123456789012:execution:webordinary-message:abcdefgh-0100018c",
    "SES id 0100018c2f3e4d5a-1b2c3d4e-5f6a-7b8c-9d0e-1f2a3b4c5d6e-000000",
]


def _all_replies() -> list[tuple[str, str]]:
    """(what, text) for every kind of reply, with hostile details wherever the facts can carry them."""
    rendered: list[tuple[str, str]] = []
    result = ResultFacts(
        summary='Replaced "Call us" with "Ring us" (2 places in index.html and contact/index.html).',
        previewUrl="http://abcdefgh-bakery.preview.localhost:8080/",
        commit=COMMIT,
        filesChanged=["index.html", "contact/index.html"],
    )
    rendered.append(("done", replies.render(ReplyFacts(outcome="done", threadId="abcdefgh", result=result)).text))
    stop = ResultFacts(
        kind="stopped",
        summary=replies.stop_summary(
            "make the header blue", replies.interruption_text(stop=True, same_thread=True, saved=True)
        ),
        commit=COMMIT,
    )
    rendered.append(("stopped", replies.render(ReplyFacts(outcome="stopped", threadId="abcdefgh", result=stop)).text))
    for commit, summary in ((COMMIT, "Made the heading blue on 1 page so far."), ("", TRACE)):
        paused = ResultFacts(
            kind="paused", summary=summary, commit=commit, filesChanged=["index.html"] if commit else [], budget=BUDGET
        )
        text = replies.render(ReplyFacts(outcome="paused", threadId="abcdefgh", result=paused)).text
        rendered.append((f"paused commit={bool(commit)}", text))
    for stopped in (True, False):
        for same in (True, False):
            for wip in (COMMIT, ""):
                facts = InterruptionFacts(stop=stopped, sameThread=same, resume=not same, wipCommit=wip)
                text = replies.render(ReplyFacts(outcome="superseded", threadId="abcdefgh", interruption=facts)).text
                rendered.append((f"superseded stop={stopped} same={same} wip={bool(wip)}", text))
    rendered.append(("dead-lettered", replies.render(ReplyFacts(outcome="dead-lettered", threadId="abcdefgh")).text))
    for name in [*sorted(replies.all_error_names()), "States.Timeout", "States.HeartbeatTimeout", "Something"]:
        for cause in ["", "The site already says that, so nothing was changed.", *HOSTILE_CAUSES]:
            failure = FailureFacts(Error=name, Cause=cause)
            text = replies.render(ReplyFacts(outcome="failed", threadId="abcdefgh", failure=failure)).text
            rendered.append((f"failed {name} / {cause[:30]!r}", text))
    notices: list[tuple[replies.NoticeKind, RejectedMailError]] = [
        ("refusal", SenderNotAllowedError("stranger@example.com may not send instructions to bakery")),
        ("problem", TooLargeError("The email is 41.0 MB; emails (with their attachments) may be at most 40 MB.")),
        ("problem", TooManyAttachmentsError("The message has 11 attachments; the limit is at most 10.")),
        ("problem", AttachmentTooLargeError("video.mp4 is 11.0 MB; one attachment may be at most 10 MB.")),
        ("problem", EmptyInstructionError("no new text above the quoted part")),
        ("problem", InstructionTooLongError("The instruction is 20,001 characters long; the limit is 20,000.")),
        ("problem", MalformedMailError(TRACE)),
    ]
    for kind, error in notices:
        text = replies.notice(kind, error, "bakery@mail.webordinary.test", "stranger@example.com").text
        rendered.append((f"notice {error.reason}", text))
    return rendered


@pytest.mark.parametrize("what,text", _all_replies(), ids=[w for w, _ in _all_replies()])
def test_every_reply_is_plain_words(what: str, text: str) -> None:
    assert replies.leaks(text) == [], text
    assert text.startswith("Hello,\r\n\r\n") and "\r\n-- \r\nWebOrdinary" in text
    assert "\n" not in text.replace("\r\n", "")  # CRLF throughout, as mail wants it
    assert "\r\n\r\n\r\n" not in text


def test_a_finished_change_says_what_changed_where_to_look_and_which_version() -> None:
    result = ResultFacts(
        summary='Replaced "Call us" with "Ring us".',
        previewUrl="http://abcdefgh-bakery.preview.localhost:8080/",
        commit=COMMIT,
        filesChanged=[f"page{i}.html" for i in range(12)],
    )
    text = replies.render(ReplyFacts(outcome="done", threadId="abcdefgh", result=result)).text
    body, footer = text.split("\r\n-- \r\n")
    assert 'Replaced "Call us" with "Ring us".' in body
    assert "See it here: http://abcdefgh-bakery.preview.localhost:8080/" in body
    assert "  - page0.html" in body and "  - page9.html" in body and "and 2 more" in body
    assert "reply STOP" in body and COMMIT[:7] not in body
    assert footer == f"WebOrdinary · conversation abcdefgh · version {COMMIT[:7]}\r\n"


def test_a_failure_explains_in_words_and_shows_only_explanations_written_for_the_owner() -> None:
    def failed(error: str, cause: str) -> str:
        return replies.render(
            ReplyFacts(outcome="failed", threadId="abcdefgh", failure=FailureFacts(Error=error, Cause=cause))
        ).text

    nothing = failed("NothingToChangeError", 'I could not find "Call us" anywhere in the site.')
    assert "did not need changing" in nothing and 'I could not find "Call us" anywhere' in nothing
    assert "NothingToChangeError" not in nothing and "Nothing was published" in nothing
    build = failed("BuildFailedError", "npm ERR! missing script: build\nsh: 1: vite: not found")
    assert "could not be rebuilt" in build and "npm" not in build and "vite" not in build
    crash = failed("WorkerCrashedError", TRACE)
    assert "went wrong on our side" in crash and "Traceback" not in crash
    hostile = failed("InstructionError", f"Use replace. {COMMIT}\n{TRACE}")
    assert "Use replace." not in hostile  # a line that leaks is dropped whole, not shown in part
    assert replies.leaks(hostile) == []


def test_every_failure_the_owner_can_be_told_about_has_its_own_words() -> None:
    told = {route.error.__name__ for route in errors.COMMAND_ERROR_ROUTES if route.branch == "Record CommandFailed"}
    told.add(errors.ThreadConflictError.__name__)
    assert told <= set(replies.FAILURE_WORDS), sorted(told - set(replies.FAILURE_WORDS))
    assert set(replies.FAILURE_WORDS) <= replies.all_error_names()
    assert len({words.what for words in replies.FAILURE_WORDS.values()}) == len(replies.FAILURE_WORDS)


def test_an_interrupted_request_says_whether_its_work_is_kept() -> None:
    kept = replies.render(
        ReplyFacts(
            outcome="superseded",
            threadId="abcdefgh",
            interruption=InterruptionFacts(sameThread=True, wipCommit=COMMIT),
        )
    ).text
    assert "took over" in kept and "saved, so nothing is lost" in kept and kept.endswith(f"{COMMIT[:7]}\r\n")
    untouched = replies.render(
        ReplyFacts(outcome="superseded", threadId="abcdefgh", interruption=InterruptionFacts(stop=True))
    ).text
    assert "stopped, as you asked" in untouched and "had not changed anything yet" in untouched


@pytest.mark.parametrize(
    "text,found",
    [
        ("What happened: NothingToChangeError", ["a class name"]),
        (TRACE, ["a class name", "a stack trace", "a raw log line"]),
        (f"Commit: {COMMIT}", ["a full commit id", "a long hex id"]),
        ("Branch: thread-abcdefgh", ["a branch or ref name"]),
        ("kept on refs/webordinary/wip/x", ["a branch or ref name"]),
        ("0100018c2f3e4d5a-1b2c3d4e-5f6a-7b8c-9d0e-1f2a3b4c5d6e-000000", ["a long hex id", "a UUID or SES id"]),
        ("arn:aws:states:us-east-1:1:execution:x", ["an AWS resource name"]),
        ("fatal: repository not found", ["a raw log line"]),
        ('Replaced "Error" with "Oops" in index.html.', []),
        ("Your change is ready. Call 0123 456 789 or visit cafe-deadbeef.example", []),
        (f"Hello\r\n\r\n-- \r\nWebOrdinary · version {COMMIT[:7]}\r\n", []),
        (f"Hello\r\n\r\n-- \r\nWebOrdinary · version {COMMIT}\r\n", ["a long id in the footer"]),
    ],
)
def test_leaks_finds_what_must_not_be_shown(text: str, found: list[str]) -> None:
    assert replies.leaks(text) == found


@pytest.mark.parametrize(
    "words",
    [
        replies.REPLACE_FORM,
        replies.ALREADY_SAYS,
        replies.NO_FILE_CHANGED,
        replies.ALREADY_SAVED,
        replies.NOTHING_TO_STOP,
        replies.empty_replacement("Ring us"),
        replies.not_found_anywhere(["Call us", "Fax us"]),
        replies.replaced("Call us", "Ring us", {"a.html": 1, "b.html": 2, "c.html": 1, "d.html": 1}),
        replies.left_alone(["Fax us"]),
        replies.ran("python3 tools/edit.py"),
        replies.stop_summary(
            "make the header blue\nthanks", replies.interruption_text(stop=True, same_thread=True, saved=True)
        ),
    ],
)
def test_what_the_worker_says_is_plain_words_too(words: str) -> None:
    assert replies.leaks(words) == [] and words.strip() == words and words.endswith((".", ")"))


def test_the_replace_editor_words_read_naturally() -> None:
    assert replies.replaced("a", "b", {"x.html": 1}) == 'Replaced "a" with "b" (1 place in x.html).'
    assert replies.where(["1", "2", "3", "4", "5"]) == "5 files: 1, 2, 3 and 2 more"
    assert replies.quote_list(["a", "b", "c"]) == '"a", "b" or "c"'


def test_a_paused_change_says_what_was_done_and_how_much_continue_allows() -> None:
    result = ResultFacts(
        kind="paused",
        summary="Made the heading blue on 1 page so far.",
        commit=COMMIT,
        filesChanged=["index.html"],
        budget=BudgetFacts(spentUsd=20.37, allowanceUsd=20.0, continueUsd=5.0),
    )
    text = replies.render(ReplyFacts(outcome="paused", threadId="abcdefgh", result=result)).text
    assert "this month's allowance for the editing assistant is used up ($20.37 of $20)" in text
    assert "saved (index.html)" in text and "Made the heading blue on 1 page so far." in text
    assert "reply CONTINUE: that allows up to $5 more this month" in text
    assert f"version {COMMIT[:7]}" in text and replies.leaks(text) == []
