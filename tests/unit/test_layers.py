"""The import contract: which layer may import which (read from the source, so a lazy import counts too).

- **Domain** (pure: no AWS SDK, no store, no I/O adapter): what the product decides — models, events and their
  fold, mail parsing, replies, commands, previews' and manifests' naming, errors, settings.
- **Adapters** (``workflows/adapters/``): AWS clients, the stores, the event log, task tokens, reply sending,
  the preview fallback. **Services** (``workflows/``: the intake, the reaper, the dead-letter consumer, projects)
  are the use cases over them. Both may import the domain; the domain never imports them.
- **What ships** (``lambdas/``, ``container/``, ``workflows/`` but ``workflows/local/``) never imports the
  embedded stack, the CLI or the benches (``workflows/local/``), so a bundler takes whole packages.
- **Handlers** (``lambdas/``, ``container/``) sit on top: nothing in ``workflows/`` imports them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DOMAIN = (
    "workflows.attachments",
    "workflows.commands",
    "workflows.errors",
    "workflows.event_metrics",
    "workflows.events",
    "workflows.mail",
    "workflows.models",
    "workflows.previews",
    "workflows.replies",
    "workflows.settings",
    "workflows.site_manifests",
    "workflows.text",
    "workflows.threads",
)
# What the domain may not import (besides the AWS SDK): every adapter and service, and everything above them.
NOT_FOR_THE_DOMAIN = (
    "boto3",
    "botocore",
    "workflows.adapters",
    "workflows.dead_letters",
    "workflows.intake",
    "workflows.projects",
    "workflows.reaper",
    "workflows.local",
    "lambdas",
    "container",
)
NOT_SHIPPED = ("workflows.local",)
HANDLERS = ("lambdas", "container")
ADAPTERS = "workflows.adapters"
AWS_SDK = ("boto3", "botocore")
# The use cases over the adapters: services that sit in ``workflows/`` beside the domain and may still touch the
# AWS SDK themselves. Exactly the ones that do today: intake catches botocore's ``ClientError``/``BotoCoreError``.
# (dead_letters, reaper and projects reach AWS only through ``workflows.adapters``.)
SERVICES_ON_THE_SDK = ("workflows.intake",)


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(*packages: str) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
            found[_module_of(path)] = path
        single = ROOT / (package.replace(".", "/") + ".py")
        if single.exists():
            found[package] = single
    return found


def _imports(path: Path, module: str = "") -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (relative imports made absolute)."""
    module = module or _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _breaches(modules: dict[str, Path], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {imported}"
        for module, path in modules.items()
        for imported in _imports(path)
        if _under(imported, forbidden)
    )


def test_the_domain_imports_no_adapter_no_aws_sdk_and_nothing_above_it() -> None:
    domain = _sources(*DOMAIN)
    assert set(DOMAIN) <= set(domain)  # every name above is a real module or package
    assert _breaches(domain, NOT_FOR_THE_DOMAIN) == []


def test_importing_the_whole_domain_loads_no_aws_sdk() -> None:
    # Transitively too: a domain module importing a neutral one that imports boto3 would pass the test above.
    loaded = "sorted(m for m in sys.modules if m.startswith(('boto', 'mypy_boto')))"
    probe = f"import sys; import {', '.join(DOMAIN)}; print({loaded})"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_adapters_live_in_one_package() -> None:
    outside = {
        m: p for m, p in _sources("workflows").items() if not _under(m, (ADAPTERS, *NOT_SHIPPED, *SERVICES_ON_THE_SDK))
    }
    assert set(SERVICES_ON_THE_SDK) <= set(_sources("workflows"))  # every name above is a real module
    assert "workflows.names" in outside and "workflows.mail" in outside
    assert _breaches(outside, AWS_SDK) == []


def test_nothing_that_ships_imports_the_embedded_stack_the_cli_or_the_benches() -> None:
    shipped = {m: p for m, p in _sources("workflows", "lambdas", "container").items() if not _under(m, NOT_SHIPPED)}
    assert "workflows.intake" in shipped and "container.worker.runtime" in shipped
    assert _breaches(shipped, NOT_SHIPPED) == []


def test_nothing_in_workflows_imports_a_handler() -> None:
    library = {m: p for m, p in _sources("workflows").items() if not _under(m, NOT_SHIPPED)}
    assert _breaches(library, HANDLERS) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [("from . import x", "pkg.x"), ("from .y import z", "pkg.y.z"), ("def f():\n    import boto3\n", "boto3")],
)
def test_relative_and_lazy_imports_do_not_slip_past_the_reader(tmp_path: Path, source: str, expected: str) -> None:
    path = tmp_path / "__init__.py"
    path.write_text(source)
    assert expected in _imports(path, "pkg")
