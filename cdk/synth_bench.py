"""Time a full synthesis of the app (with the cdk-nag packs), as `cdk synth` runs it: prints seconds per phase.

.venv/bin/python -m cdk.synth_bench
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

started = time.perf_counter()
import aws_cdk as core  # noqa: E402

from cdk.app import build_app  # noqa: E402
from workflows import names  # noqa: E402

imported = time.perf_counter()


def main() -> int:
    context = json.loads((names.REPO_ROOT / "cdk.json").read_text())["context"]
    context.update(
        {
            "inboundDomain": "mail.example.com",
            "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a", "us-east-1b"],
        }
    )
    with tempfile.TemporaryDirectory() as outdir:
        before_build = time.perf_counter()
        app, _ = build_app(context, outdir=outdir, env=core.Environment(account="123456789012", region="us-east-1"))
        built = time.perf_counter()
        app.synth()
        synthesized = time.perf_counter()
        staged = sum(1 for p in Path(outdir).rglob("*") if p.is_file())
    print(f"import aws_cdk + app   {imported - started:6.2f} s")
    print(f"construct tree        {built - before_build:6.2f} s")
    print(f"synth (nag, assets)   {synthesized - built:6.2f} s   ({staged} files in the cloud assembly)")
    print(f"total                 {synthesized - started:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
