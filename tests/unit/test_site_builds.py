"""How a site builds: detection from package.json and its lockfile, the dependency cache keyed by the
lockfile, and finding the output a generator wrote. The npm tests run the real npm (offline: the dependency
is a local tarball), skipped where npm is not installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from container.worker.build import BuildPlan, plan_build, run_build
from workflows.errors import BuildFailedError

NPM = shutil.which("npm")
needs_npm = pytest.mark.skipif(NPM is None, reason="needs npm (Debian: npm) to install and build a Node site")


def _package(root: Path, manifest: dict[str, object], lockfile: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps(manifest))
    if lockfile:
        (root / lockfile).write_text("lock")
    return root


def _tools(*available: str) -> object:
    return lambda name: f"/usr/bin/{name}" if name in available else None


SITE = {"scripts": {"build": "vite build"}, "devDependencies": {"vite": "^5"}}


def test_a_site_without_package_json_builds_as_configured(tmp_path: Path) -> None:
    assert plan_build(tmp_path, " python3 build.py ", "dist") == BuildPlan(
        command="python3 build.py", output_dir="dist"
    )
    assert plan_build(tmp_path, "", "") == BuildPlan()


def test_npm_sites_install_with_ci_and_build_with_their_script(tmp_path: Path) -> None:
    plan = plan_build(_package(tmp_path, SITE, "package-lock.json"), "", "", _tools("npm"))
    assert plan.install == ("npm", "ci", "--no-audit", "--no-fund") and plan.command == "npm run build"
    assert plan.output_dir == "" and len(plan.install_key) == 24


@pytest.mark.parametrize(
    "lockfile,tools,install,build",
    [
        ("pnpm-lock.yaml", ("npm", "pnpm"), ("pnpm", "install", "--frozen-lockfile"), "pnpm run build"),
        ("yarn.lock", ("npm", "yarn"), ("yarn", "install", "--frozen-lockfile"), "yarn run build"),
        # The lockfile's tool is not installed: npm, from package.json.
        ("pnpm-lock.yaml", ("npm",), ("npm", "install", "--no-audit", "--no-fund"), "npm run build"),
        (None, ("npm",), ("npm", "install", "--no-audit", "--no-fund"), "npm run build"),
    ],
)
def test_the_lockfile_names_the_tool_when_it_is_there(
    tmp_path: Path, lockfile: str | None, tools: tuple[str, ...], install: tuple[str, ...], build: str
) -> None:
    plan = plan_build(_package(tmp_path, SITE, lockfile), "", "", _tools(*tools))
    assert (plan.install, plan.command) == (install, build)


def test_configuration_wins_and_sites_without_dependencies_install_nothing(tmp_path: Path) -> None:
    site = _package(tmp_path / "a", SITE, "package-lock.json")
    assert plan_build(site, "npm run build:prod", "public", _tools("npm")).command == "npm run build:prod"
    bare = plan_build(_package(tmp_path / "b", {"scripts": {"build": "node build.js"}}), "", "", _tools("npm"))
    assert bare == BuildPlan(command="npm run build")
    assert plan_build(_package(tmp_path / "c", {"name": "x"}), "", "", _tools("npm")) == BuildPlan()


def test_the_cache_key_follows_the_lockfile(tmp_path: Path) -> None:
    one = plan_build(_package(tmp_path / "a", SITE, "package-lock.json"), "", "", _tools("npm"))
    two = plan_build(_package(tmp_path / "b", SITE, "package-lock.json"), "", "", _tools("npm"))
    (tmp_path / "b" / "package-lock.json").write_text("another lock")
    three = plan_build(tmp_path / "b", "", "", _tools("npm"))
    assert one.install_key == two.install_key != three.install_key


def test_an_unreadable_package_json_fails_the_build_in_words(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{ not json")
    with pytest.raises(BuildFailedError, match=r"package\.json could not be read"):
        plan_build(tmp_path, "", "")


def test_the_output_is_what_the_build_wrote_not_a_source_folder(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "public").mkdir(parents=True)
    (site / "public" / "favicon.svg").write_text("<svg/>")
    (site / ".git" / "info").mkdir(parents=True)
    built = run_build(site, BuildPlan(command="mkdir -p build && echo hi > build/index.html"), timeout=30)
    assert built.path == (site / "build").resolve() and not built.installed
    assert "/build" in (site / ".git" / "info" / "exclude").read_text().splitlines()
    with pytest.raises(BuildFailedError, match="wrote none of"):
        run_build(tmp_path / "empty", BuildPlan(command="true"), timeout=30) if (
            tmp_path / "empty"
        ).mkdir() is None else None


BUILDER = """#!/usr/bin/env node
const fs = require("fs");
fs.mkdirSync("dist/assets", { recursive: true });
fs.writeFileSync("dist/assets/site.css", "h1{color:#8b4513}");
const name = JSON.parse(fs.readFileSync("package.json", "utf8")).name;  // the site's, in the cwd
fs.writeFileSync("dist/index.html", '<link rel="stylesheet" href="/assets/site.css"><h1>' + name + "</h1>");
"""


def _node_site(root: Path, tarball: Path) -> Path:
    root.mkdir(parents=True)
    (root / ".git" / "info").mkdir(parents=True)
    manifest = {
        "name": "harbour-bakery",
        "private": True,
        "scripts": {"build": "tiny-site-builder"},
        "devDependencies": {"tiny-site-builder": f"file:{tarball}"},
    }
    (root / "package.json").write_text(json.dumps(manifest))
    subprocess.run(
        [str(NPM), "install", "--package-lock-only", "--offline", "--no-audit", "--no-fund"],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return root


@pytest.fixture
def builder_tarball(tmp_path: Path) -> Path:
    package = tmp_path / "tiny-site-builder"
    package.mkdir()
    (package / "package.json").write_text(
        json.dumps({"name": "tiny-site-builder", "version": "1.0.0", "bin": {"tiny-site-builder": "cli.js"}})
    )
    (package / "cli.js").write_text(BUILDER)
    (package / "cli.js").chmod(0o755)
    done = subprocess.run(
        [str(NPM), "pack", "--pack-destination", str(tmp_path)], cwd=package, check=True, capture_output=True, text=True
    )
    return tmp_path / done.stdout.strip().splitlines()[-1]


@needs_npm
def test_a_node_site_installs_once_per_lockfile_and_builds(tmp_path: Path, builder_tarball: Path) -> None:
    cache = tmp_path / "cache"
    first_site = _node_site(tmp_path / "one", builder_tarball)
    plan = plan_build(first_site, "", "")
    assert plan.install[:2] == ("npm", "ci") and plan.command == "npm run build"

    first = run_build(first_site, plan, timeout=300, cache_root=cache)
    assert first.installed and first.path == (first_site / "dist").resolve()
    assert (first.path / "index.html").read_text().endswith("<h1>harbour-bakery</h1>")
    assert (first_site / "node_modules").is_symlink()  # the install lives in the cache
    assert {"/node_modules", "/dist"} <= set((first_site / ".git" / "info" / "exclude").read_text().splitlines())

    # The same lockfile again, in this checkout and in another one on the same volume: nothing to install.
    shutil.rmtree(first_site / "dist")
    again = run_build(first_site, plan, timeout=300, cache_root=cache)
    assert not again.installed and (again.path / "assets" / "site.css").is_file()
    second_site = _node_site(tmp_path / "two", builder_tarball)
    other = run_build(second_site, plan_build(second_site, "", ""), timeout=300, cache_root=cache)
    assert not other.installed and (other.path / "index.html").is_file()
