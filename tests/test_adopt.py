"""ccvm init on a seed-style project (tests/fixtures/adopt/seed-project):
copied into a throwaway git repository, adopted, then every command a new
user runs next, each a real `python -m ccvm` in that repository.  The
project's own files must come out byte for byte as they went in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from clirun import run_ccvm
from gitrepo import GitRepo, isolated_git_env
from nixtest import FLAKES, offline_env

from ccvm.adopt.flake import read_flake, read_text
from ccvm.adopt.formatters import shfmt_settings
from ccvm.matrix.model import load_matrix

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "fixtures" / "adopt" / "seed-project"
BIN = Path(sys.executable).parent
ADDED = {"matrix/actions.yaml", "matrix/boot.yaml", "matrix/builds.yaml", "matrix/gate.yaml"}
ADDED |= {"matrix/guest.yaml", "matrix/style.yaml", "noxfile.py", ".github/workflows/ccvm.yml"}


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def seed_repo(tmp_path: Path) -> Path:
    repo = GitRepo.create(tmp_path / "seed", files={})
    shutil.copytree(SEED, repo.path, dirs_exist_ok=True)
    repo.commit("seed project")
    return repo.path


def ccvm(repo: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**isolated_git_env(), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env = {key: value for key, value in env.items() if not key.startswith("CCVM_")}
    return run_ccvm(*args, cwd=repo, env=env, timeout=timeout)


def test_init_then_every_next_command_is_clean_and_the_project_is_untouched(tmp_path):
    repo = seed_repo(tmp_path)
    before = snapshot(repo)
    init = ccvm(repo, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert {f"wrote {path}" for path in ADDED} <= set(init.stdout.splitlines())
    assert "guessed: the flake's systems, checks and packages were read from flake.nix's text" in init.stdout
    assert "shfmt: -i 2 -s -ci (treefmt.toml [formatter.shfmt])" in init.stdout
    for args in (["matrix", "--no-probe"], ["generate", "--check"], ["gate", "--plan"], ["fmt"], ["docs"], ["lint"]):
        done = ccvm(repo, *args)
        assert done.returncode == 0, (args, done.stdout + done.stderr)
    after = snapshot(repo)
    assert {path: after[path] for path in before} == before  # the project's own files, byte for byte
    # Besides what init wrote: the checks' JUnit files, and ruff's cache (which git ignores by its own .gitignore).
    assert {path for path in after if not path.startswith(("reports/", ".ruff_cache/"))} - set(before) == ADDED


def test_what_init_found_in_the_seed_project(tmp_path):
    repo = seed_repo(tmp_path)
    assert ccvm(repo, "init").returncode == 0
    matrix = load_matrix(repo / "matrix")
    assert [cell.id for cell in matrix.cells] == [
        "x86_64-kvm-q35",
        "x86_64-tcg-q35",
        "aarch64-kvm-virt",
        "aarch64-tcg-virt",
    ]
    assert {(t.attr, t.system) for t in matrix.builds.targets} >= {
        ("wrapper", "x86_64-linux"),
        ("docs", "aarch64-linux"),
    }
    checks = {check.name: check.run for check in matrix.gate.checks}
    assert checks["host"] == ("bash", "tests/host.sh") and checks["docs"] == ("ccvm", "docs")
    assert "flake-check" in checks and "boot-x86_64-tcg-q35" in checks
    assert matrix.style.shfmt_options == ("-i", "2", "-s", "-ci")
    assert matrix.guest == load_matrix(ROOT / "matrix").guest  # ccvm's own pinned guest packages
    plan = ccvm(repo, "gate", "--plan", "--json")
    assert {r["name"] for r in json.loads(plan.stdout)["requirements"]} >= {"drift", "boot-x86_64-tcg-q35"}
    workflow = yaml.safe_load((repo / ".github" / "workflows" / "ccvm.yml").read_text())
    names = {entry["check"] for entry in workflow["jobs"]["checks"]["strategy"]["matrix"]["include"]}
    assert names == {"lint", "fmt", "drift", "docs", "host", "flake-check"}


def test_init_twice_refuses_in_one_line_and_force_writes_again(tmp_path):
    repo = seed_repo(tmp_path)
    assert ccvm(repo, "init").returncode == 0
    (repo / "matrix" / "boot.yaml").write_text("edited\n")
    again = ccvm(repo, "init")
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert "--force" in again.stderr and "Traceback" not in again.stderr
    assert (repo / "matrix" / "boot.yaml").read_text() == "edited\n"
    forced = ccvm(repo, "init", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "cells:" in (repo / "matrix" / "boot.yaml").read_text()
    assert "left alone: noxfile.py (the project's own)" in forced.stdout  # written by the first run: now it is theirs
    assert ccvm(repo, "generate", "--check").returncode == 0


def test_a_hand_written_workflow_where_ccvms_goes_stops_init_before_it_writes(tmp_path):
    repo = seed_repo(tmp_path)
    mine = repo / ".github" / "workflows" / "ccvm.yml"
    mine.write_text("name: mine\n")
    (repo / "noxfile.py").write_text("# the project's own\n")
    done = ccvm(repo, "init")
    assert done.returncode == 2 and "ccvm never overwrites it" in done.stderr
    assert mine.read_text() == "name: mine\n" and not (repo / "matrix").exists()
    assert (repo / "noxfile.py").read_text() == "# the project's own\n"


def test_the_generated_workflow_passes_the_schema_and_zizmor(tmp_path):
    repo = seed_repo(tmp_path)
    assert ccvm(repo, "init").returncode == 0
    workflow = repo / ".github" / "workflows" / "ccvm.yml"
    schema = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    zizmor = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--no-ignores", "--persona", "pedantic", "--format", "json", str(workflow)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert json.loads(zizmor.stdout or "null") == [] and zizmor.returncode == 0, zizmor.stdout


def test_a_flake_nix_can_evaluate_offline_is_evaluated(tmp_path, monkeypatch, nix_bin):
    for key, value in offline_env().items():
        monkeypatch.setenv(key, value)
    project = tmp_path / "flake"
    shutil.copytree(FLAKES / "builds", project)
    facts = read_flake(project)
    assert facts is not None and facts.how == "nix flake show"
    assert facts.checks["x86_64-linux"] == ("greeting-says-hello",)
    assert set(facts.packages["aarch64-linux"]) == {"default", "greeting", "hello"}
    assert not (project / "flake.lock").exists()  # --no-write-lock-file


def test_flake_text_fallback_reads_systems_and_attribute_names():
    facts = read_text(SEED, "no nix here")
    assert facts.systems == ("x86_64-linux", "aarch64-linux")
    assert facts.checks["x86_64-linux"] == ("host", "docs", "formatting")
    assert facts.packages["aarch64-linux"] == ("wrapper", "docs", "default")
    assert facts.how == "flake.nix's text" and facts.why_text == "no nix here"


@pytest.mark.parametrize(
    ("files", "options", "source"),
    [
        (
            {".treefmt.toml": '[formatter.sh]\ncommand = "shfmt"\noptions = ["-w", "-i", "4"]\n'},
            ("-i", "4"),
            ".treefmt.toml",
        ),
        (
            {"nix/treefmt.nix": '{ settings.formatter.shfmt.options = [ "-i" "2" "-s" "-ci" ]; }\n'},
            ("-i", "2", "-s", "-ci"),
            "nix/treefmt.nix settings.formatter.shfmt.options",
        ),
        (
            {"treefmt.nix": "{ programs.shfmt.enable = true; programs.shfmt.indent_size = 3; }\n"},
            ("-i", "3"),
            "indent_size",
        ),
        ({".editorconfig": "root = true\n"}, (), ".editorconfig"),
        ({}, (), "shfmt's defaults"),
    ],
)
def test_shfmt_settings_come_from_the_projects_formatter_config(tmp_path, files, options, source):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    nix = tuple(name for name in files if name.endswith(".nix"))
    found = shfmt_settings(tmp_path, nix)
    assert found.options == options and source in found.source


def test_package_defaults_are_ccvms_own_matrix_files():
    for name in ("guest.yaml", "actions.yaml"):
        packaged = ROOT / "ccvm" / "adopt" / "defaults" / name
        assert packaged.read_bytes() == (ROOT / "matrix" / name).read_bytes(), f"copy matrix/{name} to {packaged}"
