"""Stand-in agents for the demo, the benchmark and the fault-injection tests (run as ``command:`` editors)."""

from pathlib import Path

SLOW_EDIT = Path(__file__).parent / "slow_edit.py"
APPEND_LINE = Path(__file__).parent / "append_line.py"
