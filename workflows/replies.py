"""Every word a site owner reads from us: replies to their changes, and notices about mail we could not use.

Plain language only: what happened, what it means for their website, what they can do next. Never a class
name, a stack trace, a raw log, an SES or execution id, a branch name or a full commit id; a short commit id
(the version) may appear in the footer, below the signature separator. :func:`leaks` finds what must not be
there, and tests run it over every reply the suite produces.

Each reply is a :class:`RenderedReply`: the plain text today, with room for an HTML part and inline images
(a screenshot of the change) beside it, so the sender can build ``multipart/alternative`` without the words
moving anywhere else.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from workflows.errors import (
    AgentApiError,
    AgentBudgetError,
    AgentCrashedError,
    AgentTurnLimitError,
    BuildFailedError,
    EditorFailedError,
    InstructionError,
    NothingToChangeError,
    ProjectConfigError,
    RejectedMailError,
    RepositoryError,
    ThreadConflictError,
    WebOrdinaryError,
)
from workflows.previews import page_slug
from workflows.text import bounded, one_line

CRLF = "\r\n"
SIGNATURE = "WebOrdinary"
SHORT_COMMIT = 7

# --- what a reply is made of ------------------------------------------------------------------------------


class _Facts(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class BehindFacts(_Facts):
    """The live site has newer changes the conversation's copy could not take (``BranchBehind``)."""

    commits: int = 0
    conflicts: list[str] = Field(default_factory=list)


class ScreenshotFacts(_Facts):
    page: str  # "/", "/contact/"
    key: str  # the PNG in the preview bucket (the sender fetches it)
    beforeKey: str = ""  # the same page before the change (the default branch's build), when there is one


class LiveFacts(_Facts):
    """What PUBLISH or UNDO did (``LiveChange``)."""

    outcome: str = ""
    liveUrl: str = ""
    conflicts: list[str] = Field(default_factory=list)
    undidFiles: list[str] = Field(default_factory=list)
    rolledBack: bool = False


class BudgetFacts(_Facts):
    """The month's allowance for the coding agent ran out mid-change (``BudgetPause``)."""

    spentUsd: float = 0.0
    allowanceUsd: float = 0.0
    continueUsd: float = 0.0


class ResultFacts(_Facts):
    """What the worker reported for a finished command (``CommandResult``, as the workflow holds it)."""

    summary: str = ""
    previewUrl: str = ""
    versionUrl: str = ""
    commit: str = ""
    filesChanged: list[str] = Field(default_factory=list)
    kind: Literal["changed", "stopped", "publish", "undo", "paused"] = "changed"
    behindDefault: BehindFacts | None = None
    screenshots: list[ScreenshotFacts] = Field(default_factory=list)
    screenshotNote: str = ""
    live: LiveFacts | None = None
    budget: BudgetFacts | None = None


class FailureFacts(_Facts):
    """A named error and the worker's own explanation (Step Functions' ``Error`` and ``Cause``)."""

    Error: str = ""
    Cause: str = ""


class InterruptionFacts(_Facts):
    """Why a command stopped before it finished (the worker's interruption detail)."""

    stop: bool = False
    sameThread: bool = False
    resume: bool = False
    wipCommit: str = ""


Outcome = Literal["done", "stopped", "paused", "superseded", "dead-lettered", "failed"]


class ReplyFacts(_Facts):
    """Everything a reply to a change may say, as the workflow knows it when it replies."""

    outcome: Outcome
    threadId: str
    result: ResultFacts | None = None
    failure: FailureFacts | None = None
    interruption: InterruptionFacts | None = None


class InlineImage(BaseModel):
    """An image shown in the HTML part (``cid:{content_id}``), e.g. a screenshot of the changed page."""

    model_config = ConfigDict(frozen=True)
    content_id: str
    filename: str
    content_type: str
    data: bytes


class MailAttachment(BaseModel):
    """A file attached for whoever looks after the site's code (a build's log), never shown in the body."""

    model_config = ConfigDict(frozen=True)
    filename: str
    content_type: str
    data: bytes


class RenderedReply(BaseModel):
    model_config = ConfigDict(frozen=True)
    text: str
    html: str | None = None
    images: tuple[InlineImage, ...] = ()
    attachments: tuple[MailAttachment, ...] = ()


# --- replies to a change -----------------------------------------------------------------------------------


def render(facts: ReplyFacts, pictures: Mapping[str, bytes] | None = None) -> RenderedReply:
    """The reply's words. ``pictures``: the screenshots' PNGs by key, as the sender fetched them (a picture
    that could not be fetched is told as missing, never fails the reply)."""
    match facts.outcome:
        case "done" if facts.result is not None and facts.result.kind in ("publish", "undo"):
            footer = _footer(facts.threadId, facts.result.commit)
            paragraphs = _went_live(facts.result)
            return RenderedReply(text=_letter(paragraphs, footer), html=_html_letter(paragraphs, footer))
        case "done":
            result = facts.result or ResultFacts()
            images, note = _pictures(result, pictures or {})
            body = _done(result, pictured=len(images), no_picture=note, before=any(b for _, _, b in images))
            footer = _footer(facts.threadId, result.commit)
            return RenderedReply(
                text=_letter(body, footer),
                html=_done_html(result, images, note, footer),
                images=tuple(image for after, _, before in images for image in (before, after) if image is not None),
            )
        case "stopped":
            body = _stopped(facts.result or ResultFacts())
            version = ""
        case "paused":
            body = _paused(facts.result or ResultFacts())
            version = (facts.result or ResultFacts()).commit
        case "superseded":
            body = _superseded(facts.interruption or InterruptionFacts())
            version = (facts.interruption or InterruptionFacts()).wipCommit
        case "dead-lettered":
            body = _dead_lettered()
            version = ""
        case "failed":
            failure = facts.failure or FailureFacts()
            body = _failed(failure)
            version = ""
            log = _log_attachment(failure)
            if log is not None:
                body.insert(
                    -1,
                    f"The end of the {_LOGS[failure.Error][0]}'s output is attached ({log.filename}), for "
                    "whoever looks after your website's code.",
                )
                return RenderedReply(text=_letter(body, _footer(facts.threadId, version)), attachments=(log,))
    return RenderedReply(text=_letter(body, _footer(facts.threadId, version)))


# Failures whose output helps whoever maintains the site: (what ran, attachment name).
_LOGS = {
    BuildFailedError.__name__: ("build", "build-log.txt"),
    **{
        error.__name__: ("edit", "edit-log.txt")
        for error in (EditorFailedError, AgentTurnLimitError, AgentBudgetError, AgentApiError, AgentCrashedError)
    },
}


def _log_attachment(failure: FailureFacts) -> MailAttachment | None:
    if failure.Error not in _LOGS or not failure.Cause.strip():
        return None
    return MailAttachment(
        filename=_LOGS[failure.Error][1],
        content_type="text/plain; charset=utf-8",
        data=(failure.Cause.strip() + "\n").encode("utf-8"),
    )


Pictured = tuple[InlineImage, str, "InlineImage | None"]  # (after, page, before)


def _pictures(result: ResultFacts, pictures: Mapping[str, bytes]) -> tuple[list[Pictured], str]:
    """(after, page, before) for each screenshot the sender could fetch; else why there is none."""

    def image(name: str, page: str, data: bytes) -> InlineImage:
        return InlineImage(
            content_id=f"{name}@webordinary",
            filename=f"{page_slug(page)}-{name}.png",
            content_type="image/png",
            data=data,
        )

    images: list[Pictured] = []
    for index, shot in enumerate(result.screenshots, 1):
        if shot.key not in pictures:
            continue
        before = pictures.get(shot.beforeKey) if shot.beforeKey else None
        images.append(
            (
                image(f"screenshot-{index}", shot.page, pictures[shot.key]),
                shot.page,
                image(f"before-{index}", shot.page, before) if before else None,
            )
        )
    if images:
        return images, ""
    if result.screenshots:
        return [], "the picture could not be found"
    return [], result.screenshotNote


def _done(result: ResultFacts, pictured: int = 0, no_picture: str = "", before: bool = False) -> list[str]:
    paragraphs = ["Your change is ready to look at.", _sentence(result.summary)]
    if pictured:
        paragraphs.append(
            ("A picture of the changed page" if pictured == 1 else "Pictures of the changed pages")
            + (", before and after the change," if before else "")
            + (" is in this email." if pictured == 1 else " are in this email.")
        )
    elif no_picture:
        paragraphs.append(f"There is no picture this time: {_sentence(no_picture).rstrip('.')}.")
    if result.versionUrl:
        paragraphs.append(f"See it here: {result.versionUrl}")
        if result.previewUrl:
            paragraphs.append(f"The latest version of this conversation is always at {result.previewUrl}")
    elif result.previewUrl:
        paragraphs.append(f"See it here: {result.previewUrl}")
    if result.filesChanged:
        shown = result.filesChanged[:10]
        more = len(result.filesChanged) - len(shown)
        listed = CRLF.join(f"  - {name}" for name in shown) + (f"{CRLF}  and {more} more" if more > 0 else "")
        paragraphs.append(f"Files changed:{CRLF}{listed}")
    if result.behindDefault is not None:
        paragraphs.append(_behind(result.behindDefault))
    paragraphs.append(NEXT_WORDS)
    return paragraphs


NEXT_WORDS = (
    "Nothing is live yet: this is a preview. To make it live, reply PUBLISH; to take this change back, reply "
    "UNDO. To change something else, reply to this email; to stop a change that is still running, reply STOP."
)


def _files(files: list[str]) -> str:
    shown = ", ".join(files[:5]) + (" and others" if len(files) > 5 else "")
    return f" ({shown})" if shown else ""


def _went_live(result: ResultFacts) -> list[str]:
    """The reply to PUBLISH or UNDO."""
    live = result.live or LiveFacts()
    see_live = f"See your website: {live.liveUrl}" if live.liveUrl else ""
    see_preview = (
        f"See it here: {result.versionUrl or result.previewUrl}" if (result.versionUrl or result.previewUrl) else ""
    )
    match (result.kind, live.outcome):
        case ("publish", "published" | "already-live"):
            return ["Your change is live.", see_live, "If you want to take it back, reply UNDO."]
        case ("publish", "stale"):
            return [
                "Nothing was published: there is a newer version of your change than the one you last saw.",
                see_preview,
                "If it looks right, reply PUBLISH again.",
            ]
        case ("publish", "conflict"):
            return [
                "Nothing was published: your live website has changed since this conversation began, and both "
                f"change the same parts of the same files{_files(live.conflicts)}.",
                "We did not choose between the two versions, so your live website is as it was. Whoever looks "
                "after your website's code can bring them together.",
            ]
        case ("publish", _):
            return ["There is nothing to publish in this conversation yet.", "Reply with a change to make first."]
        case ("undo", "undone"):
            paragraphs = [f"Your last change is taken back{_files(live.undidFiles)}.", see_preview]
            if live.rolledBack:
                paragraphs.append("Your live website is back to how it was before you published.")
                paragraphs.append(see_live)
            else:
                paragraphs.append("To make this live, reply PUBLISH.")
            return paragraphs
        case ("undo", "live-moved"):
            return [
                "Nothing was undone: something newer has been published to your live website since, and taking "
                "your change back now could remove it too.",
                "Reply with what you would like changed instead.",
            ]
        case ("undo", "conflict"):
            return [
                f"We could not take your last change back: later changes touch the same parts{_files(live.conflicts)}.",
                "Nothing was changed. Reply with what you would like changed instead.",
            ]
        case _:
            return ["There is nothing left to undo in this conversation."]


def _html_letter(paragraphs: list[str], footer: str) -> str:
    """The HTML part for a reply of plain paragraphs: escaped, with our own preview and site links made links."""
    parts = ["<p>Hello,</p>"]
    for paragraph in filter(None, paragraphs):
        words = html.escape(paragraph)
        for url in re.findall(r"https?://[^\s<>\"']+", paragraph):
            link = _link(url)
            if link:
                words = words.replace(html.escape(url), f'<a href="{html.escape(link)}">{html.escape(url)}</a>', 1)
        parts.append(f"<p>{words}</p>")
    parts.append(f'<p style="color:#777">-- <br>{html.escape(SIGNATURE + footer)}</p>')
    return (
        '<!doctype html><html><body style="font-family:sans-serif;line-height:1.4">' + "".join(parts) + "</body></html>"
    )


def _behind(behind: BehindFacts) -> str:
    changes = "a newer change" if behind.commits == 1 else f"{behind.commits} newer changes"
    files = ", ".join(behind.conflicts[:5]) + (" and others" if len(behind.conflicts) > 5 else "")
    where = f" ({files})" if files else ""
    return (
        f"Your live website has {changes} that this conversation's copy could not take in, because they change "
        f"the same parts of the same files{where}. We did not choose between the two versions, so this preview "
        "does not include them. Whoever looks after your website's code can bring them together."
    )


def _link(url: str, page: str = "/") -> str | None:
    """A link into our own preview (the worker made ``url``); None for anything else."""
    if not re.match(r"^https?://[^\s\"'<>]+$", url):
        return None
    return url.rstrip("/") + quote(page if page.startswith("/") else f"/{page}", safe="/.-_~")


def _img(image: InlineImage, alt: str) -> str:
    return (
        f'<img src="cid:{html.escape(image.content_id)}" alt="{html.escape(alt)}" width="640" '
        'style="max-width:100%;border:1px solid #ddd">'
    )


def _done_html(result: ResultFacts, images: list[Pictured], no_picture: str, footer: str) -> str:
    """The HTML part: the same facts as the text, with the pictures inline and the pages as links. Nothing
    from the agent's words becomes markup: they are escaped, and links point only at our preview."""
    e = html.escape
    base = result.versionUrl or result.previewUrl
    parts = ["<p>Hello,</p>", "<p><strong>Your change is ready to look at.</strong></p>"]
    summary = _sentence(result.summary)
    if summary:
        parts.append("<p>" + "<br>".join(e(line) for line in summary.splitlines()) + "</p>")
    for image, page, before in images:
        target = _link(base, page)
        if before is not None:
            parts.append(f"<p>{e(page)} before:</p>")
            parts.append(f"<p>{_img(before, f'Your page {page} before the change')}</p>")
            parts.append(f"<p>{e(page)} after:</p>")
        picture = _img(image, f"Your page {page} after the change")
        parts.append(f'<p><a href="{e(target)}">{picture}</a></p>' if target else f"<p>{picture}</p>")
    if not images and no_picture:
        parts.append(f"<p>There is no picture this time: {e(_sentence(no_picture).rstrip('.'))}.</p>")
    links = []
    for _, page, _ in images:
        target = _link(base, page)
        if target:
            links.append(f'<li><a href="{e(target)}">{e(page)}</a></li>')
    if links:
        parts.append("<p>Pages changed:</p><ul>" + "".join(links) + "</ul>")
    version, latest = _link(result.versionUrl), _link(result.previewUrl)
    if version:
        parts.append(f'<p><a href="{e(version)}">See your change</a></p>')
        if latest:
            parts.append(
                f'<p>The latest version of this conversation is always at <a href="{e(latest)}">{e(latest)}</a></p>'
            )
    elif latest:
        parts.append(f'<p><a href="{e(latest)}">See your change</a></p>')
    if result.filesChanged:
        shown = result.filesChanged[:10]
        more = len(result.filesChanged) - len(shown)
        items = "".join(f"<li>{e(name)}</li>" for name in shown) + (f"<li>and {more} more</li>" if more > 0 else "")
        parts.append(f"<p>Files changed:</p><ul>{items}</ul>")
    if result.behindDefault is not None:
        parts.append(f"<p>{e(_behind(result.behindDefault))}</p>")
    next_words = html.escape(NEXT_WORDS)
    for word in ("PUBLISH", "UNDO", "STOP"):
        next_words = next_words.replace(f"reply {word}", f"reply <strong>{word}</strong>")
    parts.append(f"<p>{next_words}</p>")
    parts.append(f'<p style="color:#777">-- <br>{e(SIGNATURE + footer)}</p>')
    return (
        '<!doctype html><html><body style="font-family:sans-serif;line-height:1.4">' + "".join(parts) + "</body></html>"
    )


def _stopped(result: ResultFacts) -> list[str]:
    return [_sentence(result.summary) or "Stopped.", "Nothing new was started. Reply to this email to continue."]


def _paused(result: ResultFacts) -> list[str]:
    """The month's allowance for the agent ran out mid-change: what was done, and how to let it finish."""
    budget = result.budget or BudgetFacts()
    saved = (
        f"What it did so far is saved{_files(result.filesChanged)}, but not finished, so there is no new preview "
        "yet and nothing is live."
        if result.commit
        else "Nothing was changed yet."
    )
    return [
        "Your change is paused: this month's allowance for the editing assistant is used up "
        f"({_dollars(budget.spentUsd)} of {_dollars(budget.allowanceUsd)}).",
        saved,
        _sentence(result.summary),
        f"To let it finish, reply CONTINUE: that allows up to {_dollars(budget.continueUsd)} more this month, and "
        "it carries on where it stopped. To leave it as it is, there is nothing to do.",
    ]


def _dollars(amount: float) -> str:
    return f"${amount:,.0f}" if float(amount).is_integer() else f"${amount:,.2f}"


def _superseded(interruption: InterruptionFacts) -> list[str]:
    if interruption.stop:
        what = "This request was stopped, as you asked."
    elif interruption.sameThread:
        what = "Your newer message in this conversation took over from this request and carries on from its work."
    else:
        what = (
            "This request was set aside for your newer message in another conversation, and there was no room "
            "to come back to it."
        )
    kept = (
        "What it had done so far is saved, so nothing is lost."
        if interruption.wipCommit
        else "It had not changed anything yet."
    )
    return [what, kept, "Reply to this email to continue."]


def _dead_lettered() -> list[str]:
    return [
        "We could not complete your change after several tries.",
        "Nothing is lost: your message and any partial work are kept, and our team has been alerted to look at "
        "it and run it again. You do not need to send it again.",
    ]


class FailureWords(BaseModel):
    """How a named error is told: what happened, whether the worker's explanation is shown (only for errors
    whose explanations are written for the owner), and what to do next."""

    model_config = ConfigDict(frozen=True)
    what: str
    show_detail: bool = False
    next: str = "Reply to this email to try again or to ask for something different."


FAILURE_WORDS: dict[str, FailureWords] = {
    InstructionError.__name__: FailureWords(
        what="We could not tell from your message what to change.", show_detail=True
    ),
    NothingToChangeError.__name__: FailureWords(what="Your website did not need changing.", show_detail=True),
    EditorFailedError.__name__: FailureWords(what="The editing tool stopped with a problem before it finished."),
    AgentTurnLimitError.__name__: FailureWords(
        what="The change turned out bigger than the number of steps your website allows for one request, so it "
        "was not finished.",
        next="Reply with a smaller, more specific request, or ask whoever set up your website with us to allow "
        "more steps.",
    ),
    AgentBudgetError.__name__: FailureWords(
        what="The change reached the spending limit set for your website before it was finished.",
        next="Ask whoever set up your website with us to raise the limit, then reply to try again.",
    ),
    AgentApiError.__name__: FailureWords(
        what="The AI service that makes the changes was not available, so nothing was changed.",
        next="Please reply to try again in a few minutes.",
    ),
    AgentCrashedError.__name__: FailureWords(what="The editing tool stopped before it finished."),
    BuildFailedError.__name__: FailureWords(
        what="Your change was saved, but your website could not be rebuilt with it, so there is nothing new to "
        "look at yet."
    ),
    RepositoryError.__name__: FailureWords(what="We could not open your website's files."),
    ProjectConfigError.__name__: FailureWords(
        what="Your website's setup with us is incomplete, so we could not work on it.",
        next="Please ask whoever set up your website with us to check its settings, then reply to try again.",
    ),
    ThreadConflictError.__name__: FailureWords(
        what="This email continues a conversation about another website, so we did not act on it.",
        next="Please write a new email (not a reply) to the address of the website you want to change.",
    ),
}
UNKNOWN_FAILURE = FailureWords(what="Something went wrong on our side while making your change.")


def failure_words(error: str) -> FailureWords:
    return FAILURE_WORDS.get(error, UNKNOWN_FAILURE)


def _failed(failure: FailureFacts) -> list[str]:
    words = failure_words(failure.Error)
    paragraphs = ["Sorry, your change could not be made.", words.what]
    detail = _sentence(failure.Cause) if words.show_detail else ""
    if detail and not leaks(detail):
        paragraphs.append(detail)
    paragraphs.append(f"Nothing was published. {words.next}")
    return paragraphs


# --- what the worker says when a command is interrupted or stopped ---------------------------------------


def interruption_text(*, stop: bool, same_thread: bool, saved: bool) -> str:
    """One or two sentences on what happened to an interrupted command (shown in the STOP reply)."""
    if stop:
        text = "Stopped at your request."
    elif same_thread:
        text = "Your newer message in this conversation took over; it continues from this request's work."
    else:
        text = "Paused for your newer message in another conversation; this request resumes after it."
    return text + (" What it had done so far is saved." if saved else " Nothing had been changed yet.")


def stop_summary(instruction: str, interruption: str) -> str:
    first = instruction.strip().splitlines()[0] if instruction.strip() else ""
    if not first:
        return interruption
    return f'Stopped "{bounded(first, 120)}". {interruption}'


NOTHING_TO_STOP = "Nothing was running, so there was nothing to stop."


# --- what the editors and the job say (summaries and explanations the owner reads) ------------------------

REPLACE_FORM = (
    'I could not find anything to replace in your message. Please write it like: replace "old text" with '
    '"new text" (several are fine, e.g. replace "a" with "b" and "c" with "d").'
)
ALREADY_SAYS = "The site already says that, so nothing was changed."
NO_FILE_CHANGED = "The edit did not change any file, so there was nothing to save."
ALREADY_SAVED = "This change was already saved by an earlier attempt; it is published now."


def empty_replacement(new: str) -> str:
    return f'The text to replace is empty (before "{new}"). {REPLACE_FORM}'


def not_found_anywhere(missing: list[str]) -> str:
    return (
        f"I could not find {quote_list(missing)} anywhere in the site, so nothing was changed. "
        "The match is exact, including capital letters."
    )


def replaced(old: str, new: str, counts_by_file: dict[str, int]) -> str:
    return f'Replaced "{old}" with "{new}" ({places(sum(counts_by_file.values()))} in {where(sorted(counts_by_file))}).'


def left_alone(missing: list[str]) -> str:
    return f"Could not find {quote_list(missing)}, so that was left alone."


def ran(command: str) -> str:
    return f"Ran {command}."


def places(count: int) -> str:
    return "1 place" if count == 1 else f"{count} places"


def where(files: list[str]) -> str:
    if len(files) == 1:
        return files[0]
    shown = ", ".join(files[:3])
    more = f" and {len(files) - 3} more" if len(files) > 3 else ""
    return f"{len(files)} files: {shown}{more}"


def quote_list(texts: list[str]) -> str:
    quoted = [f'"{text}"' for text in texts]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


# --- notices about mail we could not use ---------------------------------------------------------------------

NoticeKind = Literal["refusal", "problem"]

_ADVICE = {
    "empty-instruction": "Please write what you would like changed above the quoted part and send it again.",
    "instruction-too-long": "Please shorten it, or attach long text as a file and say what to do with it.",
    "too-large": "Please send it again with fewer or smaller attachments.",
    "too-many-attachments": "Please send fewer files, or spread them over several emails.",
    "attachment-too-large": "Please send smaller files, or spread them over several emails.",
    "malformed-mail": "Please send it again; plain text usually works best.",
}


def notice(kind: NoticeKind, error: RejectedMailError, project_address: str, sender: str) -> RenderedReply:
    """What we answer mail we did not act on. Never the rejected mail's content."""
    if kind == "refusal":
        body = [
            f"Thank you for your email to {project_address}. This address makes changes to a website only for the "
            f"people its owner has allowed, and {sender} is not one of them, so nothing was done with your message.",
            "If you should have access, please ask the website's owner to add your address.",
            "This is an automatic reply. To keep your inbox quiet, you will get at most one of these a day.",
        ]
    else:
        advice = _ADVICE.get(error.reason, "Please send it again.")
        body = [
            "We received your email but could not act on it:",
            _explain(error),
            f"Nothing on your website was changed. {advice}",
        ]
    return RenderedReply(text=_letter(body, ""))


MB = 1024 * 1024


def mail_too_large(size: int, limit: int) -> str:
    return f"The email is {size / MB:.1f} MB; emails (with their attachments) may be at most {limit // MB} MB."


def instruction_too_long(length: int, limit: int) -> str:
    return f"The instruction is {length:,} characters long; the limit is {limit:,}."


def attachment_limits(count: int, each: int, total: int) -> str:
    return f"at most {count} attachments, each at most {each // MB} MB and {total // MB} MB together"


def too_many_attachments(count: int, limits: str) -> str:
    return f"The message has {count} attachments; the limit is {limits}."


def attachment_too_large(name: str, size: int, limits: str) -> str:
    return f"{name} is {size / MB:.1f} MB; the limit is {limits}."


def attachments_too_large(total: int, limits: str) -> str:
    return f"The attachments add up to {total / MB:.1f} MB; the limit is {limits}."


def _explain(error: RejectedMailError) -> str:
    match error.reason:
        case "empty-instruction":
            return "We could not find any new text in it, only text quoted from earlier emails."
        case "malformed-mail":
            return "Your mail program sent it in a form we could not read."
        case _:
            detail = bounded(one_line(str(error)), 500)
            return detail if detail and not leaks(detail) else "It was not in a form we can work with."


# --- checking the words ---------------------------------------------------------------------------------------

_LEAKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a class name", re.compile(r"\b[A-Z][A-Za-z0-9]*(?:Error|Exception)\b")),
    ("a stack trace", re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")),
    ("a full commit id", re.compile(r"\b[0-9a-f]{40}\b")),
    ("a long hex id", re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{12,}\b")),
    ("a UUID or SES id", re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)),
    ("an AWS resource name", re.compile(r"\barn:aws[a-z-]*:")),
    ("a branch or ref name", re.compile(r"\bthread-[2-9a-z]{8}\b|\brefs/")),
    ("a raw log line", re.compile(r"^(?:fatal|error|warning): |npm ERR!|\[Errno \d+\]", re.M)),
    ("a Python object", re.compile(r"<[A-Za-z_.]+ object at 0x")),
)


def leaks(text: str, *, footer_allowed: bool = True) -> list[str]:
    """What in ``text`` a site owner must not be shown. The footer (after ``-- ``) may carry a short version id."""
    body = re.split(r"\r?\n-- \r?\n", text, maxsplit=1)[0] if footer_allowed else text
    found = [name for name, pattern in _LEAKS if pattern.search(body)]
    footer = text[len(body) :]
    if footer and re.search(r"\b[0-9a-f]{10,}\b", footer):
        found.append("a long id in the footer")
    return found


# --- shared shapes ----------------------------------------------------------------------------------------------


def _letter(paragraphs: list[str], footer: str) -> str:
    body = (CRLF * 2).join(CRLF.join(p.splitlines()) for p in paragraphs if p)
    signature = f"{SIGNATURE}{footer}"
    return f"Hello,{CRLF}{CRLF}{body}{CRLF}{CRLF}-- {CRLF}{signature}{CRLF}"


def _footer(thread_id: str, commit: str) -> str:
    parts = [f" · conversation {thread_id}"] if thread_id else []
    if commit:
        parts.append(f" · version {commit[:SHORT_COMMIT]}")
    return "".join(parts)


def _sentence(text: str) -> str:
    """A worker's words, bounded and stripped of what must not reach a mail body (line by line)."""
    kept = [line for line in text.strip().splitlines() if line.strip() and not leaks(line)]
    return bounded(CRLF.join(kept), 2000)


def all_error_names() -> set[str]:
    """Every error the product names (tests check that each one a reply can carry has words)."""

    def walk(cls: type[WebOrdinaryError]) -> set[str]:
        return {cls.__name__}.union(*(walk(sub) for sub in cls.__subclasses__()))

    return walk(WebOrdinaryError)
