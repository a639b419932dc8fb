"""Intake figures: how long parsing takes for a 1 KB, 100 KB and 10 MB mail, and how long the inbound handler
takes to import in a fresh interpreter (a Lambda cold start pays it). Prints figures; asserts nothing.

    python -m workflows.local.bench_intake [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from workflows import mail

REPO = Path(__file__).resolve().parents[2]
HANDLER = "lambdas.inbound.handler"
LAZY = ("workflows.mail", "mailparser_reply", "workflows.attachments", "html.parser")
LINE = "Please change the phone number on the contact page to 555-0199 and make it bold, thanks. "


def _message(size: int, html: bool = False, attachment: int = 0) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice Baker <alice@example.com>"
    msg["To"] = "bakery@mail.webordinary.test"
    msg["Subject"] = "Re: Phone number [wo:ab3k9x2m]"
    msg["Message-ID"] = "<bench@example.com>"
    msg["In-Reply-To"] = "<0100018b-reply@email.amazonses.com>"
    quoted = "\n".join(f"> {LINE}" for _ in range(20))
    body = ((LINE + "\n") * (max(0, size - len(quoted)) // (len(LINE) + 1) + 1))[: max(0, size - len(quoted))]
    text = f"{body}\nOn Mon, 23 Nov 2026 at 09:20, WebOrdinary <bakery@mail.webordinary.test> wrote:\n{quoted}\n"
    msg.set_content(text)
    if html:
        msg.add_alternative(f"<div>{body.replace(chr(10), '<br>')}</div><blockquote>{quoted}</blockquote>", "html")
    if attachment:
        msg.add_attachment(b"\x89PNG\r\n\x1a\n" + bytes(attachment), maintype="image", subtype="png", filename="p.png")
    return msg.as_bytes()


def _time_parse(raw: bytes, runs: int) -> dict[str, float]:
    parse_ms, extract_ms = [], []
    for _ in range(runs):
        start = time.perf_counter()
        parsed = mail.parse(raw)
        middle = time.perf_counter()
        mail.extract_instruction(parsed.text)
        parse_ms.append((middle - start) * 1000)
        extract_ms.append((time.perf_counter() - middle) * 1000)
    return {
        "rawBytes": len(raw),
        "parseMs": round(statistics.median(parse_ms), 2),
        "instructionMs": round(statistics.median(extract_ms), 2),
        "totalMs": round(statistics.median(p + e for p, e in zip(parse_ms, extract_ms, strict=True)), 2),
        "bestTotalMs": round(min(p + e for p, e in zip(parse_ms, extract_ms, strict=True)), 2),
    }


def _import_once(module: str) -> tuple[int, dict[str, int]]:
    """(total µs for ``module``, cumulative µs per top-level import) from ``-X importtime`` in a fresh process."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    per: dict[str, int] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if cumulative.isdigit():
            per[name.strip()] = int(cumulative)
    return per.get(module, 0), per


def _first_mail_import_us() -> int:
    """What the first mail of a cold container pays on top: parsing and reply-pattern modules, after the
    handler is already imported."""
    code = (
        f"import time, {HANDLER}; t = time.perf_counter(); import workflows.mail, mailparser_reply.parser; "
        "print(int((time.perf_counter() - t) * 1e6))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return int(result.stdout.strip())


def _import_figures(runs: int) -> dict[str, object]:
    totals: list[int] = []
    last: dict[str, int] = {}
    for _ in range(runs):
        total, last = _import_once(HANDLER)
        totals.append(total)
    heavy = sorted(((n, us) for n, us in last.items() if "." not in n and n != HANDLER), key=lambda x: -x[1])[:6]
    lazy_totals = [_first_mail_import_us() for _ in range(max(1, runs // 2))]
    return {
        "handlerImportMs": round(statistics.median(totals) / 1000, 1),
        "handlerImportMinMs": round(min(totals) / 1000, 1),
        "heaviestTopLevelImportsMs": {name: round(us / 1000, 1) for name, us in heavy},
        "notImportedByHandler": [name for name in LAZY if name not in last],
        "lazyMailImportMs": round(statistics.median(lazy_totals) / 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    mail.extract_instruction(mail.parse(_message(1024)).text)  # first use compiles the reply patterns
    cases = {
        "1 KB text": _message(1024),
        "100 KB text": _message(100 * 1024),
        "10 MB text": _message(10 * 1024 * 1024),
        "100 KB text+html": _message(100 * 1024, html=True),
        "9 MB attachment": _message(2048, attachment=9 * 1024 * 1024),
    }
    figures = {
        "parse": {
            name: _time_parse(raw, args.runs if len(raw) < 1_000_000 else max(1, args.runs // 2))
            for name, raw in cases.items()
        },
        "import": _import_figures(args.runs),
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"intake parse (median of {args.runs}; parse = MIME + body + attachments, instruction = new-text extraction)")
    for name, row in figures["parse"].items():  # type: ignore[attr-defined]
        print(
            f"  {name:<18} {row['rawBytes'] / 1024:>10.0f} KiB raw  parse {row['parseMs']:>8.2f} ms"
            f"  instruction {row['instructionMs']:>7.2f} ms  total {row['totalMs']:>8.2f} ms"
            f"  (best {row['bestTotalMs']:.2f})"
        )
    imports = figures["import"]
    print(f"handler cold import (python -X importtime, fresh process, median of {args.runs})")
    print(f"  {HANDLER}: {imports['handlerImportMs']} ms (min {imports['handlerImportMinMs']} ms)")  # type: ignore[index]
    print(f"  heaviest: {imports['heaviestTopLevelImportsMs']}")  # type: ignore[index]
    print(f"  lazy, not imported at cold start: {', '.join(imports['notImportedByHandler'])}")  # type: ignore[index]
    print(f"  paid by the first mail instead (parsing modules): {imports['lazyMailImportMs']} ms")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
