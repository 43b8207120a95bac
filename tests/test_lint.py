"""ccvm lint with the real shellcheck and ruff from the lint extra."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from clirun import run_ccvm

from ccvm.checks.lint import run_lint
from ccvm.report.results import Outcome

ROOT = Path(__file__).resolve().parent.parent
STATIC = Path(__file__).resolve().parent / "fixtures" / "static"


def make_project(tmp_path: Path, shell: tuple[str, ...] = (), python: tuple[str, ...] = ()) -> Path:
    """A project (not a git work tree) with the repo's ruff settings and some fixtures.

    Python fixtures are stored as NAME.py.txt so that ruff over tests/ never
    sees the deliberately bad ones; they are copied here as NAME.py."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    for name in shell:
        shutil.copy2(STATIC / "shell" / name, project / name)
    for name in python:
        shutil.copy(STATIC / "python" / f"{name}.py.txt", project / f"{name}.py")
    return project


def cases(suites, suite_name: str) -> dict:
    suite = next(s for s in suites if s.name == suite_name)
    return {case.name: case for case in suite.cases}


def test_clean_project_passes(tmp_path):
    project = make_project(tmp_path, shell=("clean.sh", "tool"), python=("clean",))
    suites = run_lint(project)
    assert [s.name for s in suites] == ["lint.shellcheck", "lint.ruff-check", "lint.ruff-format"]
    assert all(s.outcome is Outcome.PASS for s in suites), [c.message for s in suites for c in s.cases]
    assert set(cases(suites, "lint.shellcheck")) == {"clean.sh", "tool"}
    assert set(cases(suites, "lint.ruff-check")) == {"clean.py"}


def test_shellcheck_finding_fails_its_file_with_file_and_line(tmp_path):
    project = make_project(tmp_path, shell=("clean.sh", "unquoted.sh"))
    found = cases(run_lint(project), "lint.shellcheck")
    assert found["clean.sh"].outcome is Outcome.PASS
    assert found["unquoted.sh"].outcome is Outcome.FAIL
    assert found["unquoted.sh"].message.startswith("unquoted.sh:4:6: SC2086")


def test_shellcheck_reports_every_finding_of_a_file(tmp_path):
    project = make_project(tmp_path)
    (project / "two.sh").write_text("#!/bin/sh\nunused=1\necho $1\n")
    case = cases(run_lint(project), "lint.shellcheck")["two.sh"]
    assert case.outcome is Outcome.FAIL and "(and 1 more)" in case.message
    assert "two.sh:2:1: SC2034" in case.details and "two.sh:3:6: SC2086" in case.details


def test_ruff_finding_fails_with_file_and_line(tmp_path):
    project = make_project(tmp_path, python=("clean", "unused_import"))
    found = cases(run_lint(project), "lint.ruff-check")
    assert found["clean.py"].outcome is Outcome.PASS
    assert found["unused_import.py"].outcome is Outcome.FAIL
    assert "unused_import.py:3:8: F401" in found["unused_import.py"].details


def test_ruff_format_check_fails_with_the_diff(tmp_path):
    project = make_project(tmp_path, python=("clean", "misformatted"))
    found = cases(run_lint(project), "lint.ruff-format")
    assert found["clean.py"].outcome is Outcome.PASS
    assert found["misformatted.py"].outcome is Outcome.FAIL
    assert "+def add(left: int, right: int) -> int:" in found["misformatted.py"].details
    assert "clean.py" not in found["misformatted.py"].details


def test_syntax_errors_fail_both_ruff_suites(tmp_path):
    project = make_project(tmp_path, python=("clean",))
    (project / "broken.py").write_text("def f(:\n")
    suites = run_lint(project)
    assert cases(suites, "lint.ruff-check")["broken.py"].outcome is Outcome.FAIL
    assert cases(suites, "lint.ruff-format")["broken.py"].outcome is Outcome.FAIL
    assert cases(suites, "lint.ruff-format")["clean.py"].outcome is Outcome.PASS


def test_cli_exit_statuses_and_junit(tmp_path):
    project = make_project(tmp_path, shell=("clean.sh", "unquoted.sh"), python=("clean",))
    junit = tmp_path / "lint.xml"
    run = run_ccvm("lint", "--root", str(project), "--junit", str(junit), timeout=180)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL unquoted.sh:4:6: SC2086" in run.stdout
    failure = ET.parse(junit).getroot().find(".//testcase[@name='unquoted.sh']/failure")
    assert failure is not None and failure.get("message").startswith("unquoted.sh:4:6")

    (project / "unquoted.sh").unlink()
    clean = run_ccvm("lint", "--root", str(project), "--junit", str(junit), timeout=180)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    usage = run_ccvm("lint", "--no-such-option", timeout=60)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_fmt_and_lint_first_say_which_files_they_read_and_how_many_findings_are_known(tmp_path):
    project = tmp_path / "project"
    (project / "matrix").mkdir(parents=True)
    (project / "ok.sh").write_text('#!/bin/sh\necho "ok"\n')
    (project / "matrix" / "baseline.yaml").write_text(
        'version: 1\nfindings:\n  - tool: "shellcheck"\n    file: "old.sh"\n    rule: "SC2086"\n'
        '    count: 2\n    fingerprints: ["0123456789ab", "ba9876543210"]\n'
    )
    for command in ("fmt", "lint"):
        done = run_ccvm(command, "--root", str(project), timeout=120)
        lines = done.stdout.splitlines()
        assert lines[:2] == [
            f"{command}: 1 shell, 0 Python, 0 Nix file(s), found by walking the tree (not a git work tree)",
            f"{command}: 2 finding(s) known from matrix/baseline.yaml; new ones fail",
        ], done.stdout + done.stderr
    fixing = run_ccvm("fmt", "--fix", "--root", str(project), timeout=120)
    assert "known from matrix/baseline.yaml" not in fixing.stdout  # --fix rewrites; the baseline is not consulted
