"""cfn-lint finds no error in the synthesised template (warnings are reported, not failed on)."""

from __future__ import annotations

import pytest
from cfnlint.api import ManualArgs, lint_file

from tests.infra.conftest import REGION, Synthesized

pytestmark = pytest.mark.infra


def test_cfn_lint_finds_no_errors(synthesized: Synthesized) -> None:
    template_file = synthesized.outdir / "WebOrdinary.template.json"
    matches = lint_file(template_file, ManualArgs(regions=[REGION]))
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert not errors, "\n".join(f"{m.rule.id} {m.message} ({m.path_string})" for m in errors)
