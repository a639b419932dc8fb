"""A stand-in agent that is not idempotent, as no real agent is: every run appends --line to --file (its
instruction is ignored), and so a second run over its own half-done edit would add the line twice.

--sleep N with --once-marker FILE: after appending, sleep N seconds the first time only (the marker records that
it ran), so a test can kill the worker between the edit and the commit, and the retry finishes at once."""

import argparse
import pathlib
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--file", default="src/index.html")
parser.add_argument("--line", default="<p>Open on Sundays</p>")
parser.add_argument("--sleep", type=float, default=0)
parser.add_argument("--once-marker", default="")
args = parser.parse_args()
sys.stdin.read()
page = pathlib.Path(args.file)
with page.open("a", encoding="utf-8") as handle:
    handle.write(args.line + "\n")
print("appended", flush=True)
if args.once_marker:
    marker = pathlib.Path(args.once_marker)
    if not marker.exists():
        marker.write_text("ran")
        time.sleep(args.sleep)
print(f"Added {args.line!r} to {args.file}.")
