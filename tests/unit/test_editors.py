from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from container.worker.editors import (
    ClaudeCodeEditor,
    CommandEditor,
    ReplaceEditor,
    ShellResult,
    editor_for,
    parse_replacements,
    sanitised_env,
)
from tests.gitrepos import SEEDER
from workflows.errors import EditorFailedError, InstructionError, NothingToChangeError, ProjectConfigError

GIT_ENV = {**SEEDER, "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    import os

    env = {**os.environ, **GIT_ENV, "GIT_CEILING_DIRECTORIES": str(cwd.parent)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


# --- parse_replacements ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        ('replace "Call us" with "Ring us"', [("Call us", "Ring us")]),
        ('Please change "555-0100" to "555-0199". Thanks!', [("555-0100", "555-0199")]),
        ("Replace 'a' with 'b'", [("a", "b")]),
        ("REPLACE \u201cCall us\u201d WITH \u201cRing us\u201d", [("Call us", "Ring us")]),
        ("change \u2018old\u2019 to \u2018new\u2019", [("old", "new")]),
        ('replace "Call us\u201d with \u201cRing us"', [("Call us", "Ring us")]),
        ('Replace the text "Hello" with "Hi"', [("Hello", "Hi")]),
        ("replace 'don't' with 'do not'", [("don't", "do not")]),
        ('replace "gone" with ""', [("gone", "")]),
        (
            'Replace "a" with "b" and "c" with "d", "e" with "f"\n"g" with "h"',
            [("a", "b"), ("c", "d"), ("e", "f"), ("g", "h")],
        ),
        ('replace "a" with "b"\nchange "c" to "d"', [("a", "b"), ("c", "d")]),
        ('replace "a" with "b" and replace "a" with "b"', [("a", "b")]),
        ('Hi,\n\nreplace "Open 9-5" with "Open 8-6" please.\n\n-- \nSent from my phone', [("Open 9-5", "Open 8-6")]),
    ],
)
def test_parse_replacements(instruction: str, expected: list[tuple[str, str]]) -> None:
    assert parse_replacements(instruction) == expected


def test_quoted_text_without_a_verb_is_not_an_instruction() -> None:
    # Only chained after a real pair does a bare "x" with "y" count.
    assert parse_replacements('He said "yes" to "no". replace "a" with "b"') == [("a", "b")]


@pytest.mark.parametrize(
    "instruction",
    ["make the heading bigger", "replace Call us with Ring us", 'He said "yes" to "no"', 'swap "a" for "b"', ""],
)
def test_unparseable_instruction_explains_the_form(instruction: str) -> None:
    with pytest.raises(InstructionError, match='replace "old text" with "new text"'):
        parse_replacements(instruction)


def test_empty_old_text_is_an_instruction_error() -> None:
    with pytest.raises(InstructionError, match="empty"):
        parse_replacements('replace "" with "x"')


# --- ReplaceEditor -----------------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    checkout = tmp_path / "site"
    checkout.mkdir()
    git(checkout, "init", "-q", "-b", "main")
    (checkout / "index.html").write_text("<p>Call us</p>\r\n<p>Call us today</p>\n", encoding="utf-8")
    (checkout / "about.html").write_text("<p>Café — Call us</p>\n", encoding="utf-8")
    (checkout / "logo.bin").write_bytes(b"\x89PNG\0\0Call us")
    (checkout / "latin1.txt").write_bytes("Caf\xe9 Call us".encode("latin-1"))
    (checkout / "dist").mkdir()
    (checkout / "dist" / "index.html").write_text("Call us\n", encoding="utf-8")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "seed")
    (checkout / "untracked.html").write_text("Call us\n", encoding="utf-8")
    return checkout


def test_replace_editor_changes_tracked_text_files_only(site: Path) -> None:
    outcome = ReplaceEditor().run(site, 'replace "Call us" with "Ring us"', {"dist"})

    assert (site / "index.html").read_bytes() == b"<p>Ring us</p>\r\n<p>Ring us today</p>\n"  # CRLF kept
    assert (site / "about.html").read_text(encoding="utf-8") == "<p>Café — Ring us</p>\n"
    assert (site / "logo.bin").read_bytes() == b"\x89PNG\0\0Call us"
    assert (site / "latin1.txt").read_bytes() == "Caf\xe9 Call us".encode("latin-1")
    assert (site / "dist" / "index.html").read_text() == "Call us\n"
    assert (site / "untracked.html").read_text() == "Call us\n"
    assert outcome.summary == 'Replaced "Call us" with "Ring us" (3 places in 2 files: about.html, index.html).'


def test_replace_editor_summary_names_a_single_file(site: Path) -> None:
    outcome = ReplaceEditor().run(site, 'replace "today" with "now"', {"dist"})
    assert outcome.summary == 'Replaced "today" with "now" (1 place in index.html).'


def test_replace_editor_notes_a_pair_that_matched_nowhere(site: Path) -> None:
    outcome = ReplaceEditor().run(site, 'replace "Call us" with "Ring us" and "Nowhere" with "Somewhere"', set())
    assert '"Nowhere"' in outcome.summary
    assert "left alone" in outcome.summary
    assert (site / "dist" / "index.html").read_text() == "Ring us\n"  # not excluded this time


def test_replace_editor_raises_when_nothing_matches(site: Path) -> None:
    with pytest.raises(NothingToChangeError, match='"Nowhere" or "Missing"'):
        ReplaceEditor().run(site, 'replace "Nowhere" with "x" and "Missing" with "y"', {"dist"})
    assert git(site, "status", "--porcelain") == "?? untracked.html\n"


def test_replace_editor_ignores_matches_only_in_excluded_or_binary_files(site: Path) -> None:
    (site / "dist" / "only.html").write_text("Unique\n")
    git(site, "add", "-f", "dist/only.html")
    with pytest.raises(NothingToChangeError):
        ReplaceEditor().run(site, 'replace "Unique" with "x" and "PNG" with "y"', {"./dist/"})


def test_replace_with_the_same_text_is_nothing_to_change(site: Path) -> None:
    with pytest.raises(NothingToChangeError, match="already"):
        ReplaceEditor().run(site, 'replace "Call us" with "Call us"', set())


# --- CommandEditor and the sanitised environment ------------------------------------------------------------


def test_command_editor_gets_instruction_and_a_clean_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA")
    monkeypatch.setenv("TASK_TOKEN", "tok")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp")
    monkeypatch.setenv("DB_PASSWORD", "pw")
    monkeypatch.setenv("WEBORDINARY_QUEUE_URL", "q")
    monkeypatch.setenv("GIT_ASKPASS", "/bin/askpass")
    monkeypatch.setenv("LANG", "C.UTF-8")
    script = (
        "import os, sys\n"
        "open('stdin.txt', 'w').write(sys.stdin.read())\n"
        "open('env.txt', 'w').write('\\n'.join(sorted(f'{k}={v}' for k, v in os.environ.items())))\n"
        "print('working...')\n"
        "print('Changed the heading.')\n"
        "print()\n"
    )
    (tmp_path / "edit.py").write_text(script)
    editor = CommandEditor(f"{sys.executable} edit.py", timeout=30)

    outcome = editor.run(tmp_path, "make it “pop”\nplease", set())

    assert outcome.summary == "Changed the heading."
    assert (tmp_path / "stdin.txt").read_text(encoding="utf-8") == "make it “pop”\nplease"
    env = dict(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().split("\n") if "=" in line)
    for secret in (
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "TASK_TOKEN",
        "GITHUB_TOKEN",
        "DB_PASSWORD",
        "WEBORDINARY_QUEUE_URL",
        "GIT_ASKPASS",
    ):
        assert secret not in env
    assert "hunter2" not in (tmp_path / "env.txt").read_text()
    assert env["PATH"]
    assert env["LANG"] == "C.UTF-8"
    assert "WEBORDINARY_INSTRUCTION" in (tmp_path / "env.txt").read_text()


def test_command_editor_summary_defaults_to_the_command(tmp_path: Path) -> None:
    assert CommandEditor("true", timeout=10).run(tmp_path, "x", set()).summary == "Ran true."


def test_command_editor_failure_carries_the_output_tail(tmp_path: Path) -> None:
    command = "for i in $(seq 1 40); do echo line$i; done; echo boom >&2; exit 3"
    with pytest.raises(EditorFailedError) as failure:
        CommandEditor(command, timeout=10).run(tmp_path, "x", set())
    text = str(failure.value)
    assert "exit status 3" in text
    assert "boom" in text
    assert "line40" in text
    assert "line5\n" not in text  # only the tail


def test_tail_keeps_the_last_stderr_words_when_the_pipes_interleave_badly() -> None:
    # The stderr pump thread can append "boom" before the stdout pump has appended the last stdout lines.
    stdout = [f"line{i}" for i in range(1, 41)]
    result = ShellResult(3, stdout, ["boom", *stdout], stderr_lines=["boom"])
    tail = result.tail(20).splitlines()
    assert len(tail) == 21  # 19 output lines, the "stderr:" marker, the stderr line
    assert tail[-2:] == ["stderr:", "boom"]
    assert tail[-3] == "line40"


def test_tail_is_the_plain_window_when_stderr_is_in_it() -> None:
    result = ShellResult(1, ["a", "b"], ["a", "oops", "b"], stderr_lines=["oops"])
    assert result.tail(20) == "a\noops\nb"


def test_command_editor_timeout(tmp_path: Path) -> None:
    with pytest.raises(EditorFailedError, match="did not finish"):
        CommandEditor("echo started; sleep 30 & wait", timeout=0.5).run(tmp_path, "x", set())


def test_sanitised_env_extra_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBORDINARY_INSTRUCTION", "from the parent")
    env = sanitised_env({"WEBORDINARY_INSTRUCTION": "ours"})
    assert env["WEBORDINARY_INSTRUCTION"] == "ours"
    assert "WEBORDINARY_INSTRUCTION" not in sanitised_env()


# --- editor_for --------------------------------------------------------------------------------------------


def test_editor_for() -> None:
    assert isinstance(editor_for("replace"), ReplaceEditor)
    command = editor_for("command: ./edit.sh --fast", timeout=5)
    assert isinstance(command, CommandEditor)
    assert command.command == "./edit.sh --fast"
    assert command.timeout == 5
    assert isinstance(editor_for("claude-code"), ClaudeCodeEditor)
    for bad in ("command:", "sed", ""):
        with pytest.raises(ProjectConfigError):
            editor_for(bad)


def test_normalise_excluded() -> None:
    from container.worker.editors import is_excluded, normalise_excluded

    assert normalise_excluded({"./dist/", "", ".", "../x", "a/../b"}) == ["dist"]
    assert normalise_excluded(["build\\out"]) == ["build/out"]
    assert is_excluded("dist/a.html", ["dist"])
    assert is_excluded("dist", ["dist"])
    assert not is_excluded("distribution.html", ["dist"])
