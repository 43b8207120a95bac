"""Every kind of JUnit file ccvm writes is valid against the Jenkins xUnit
plugin's junit-10.xsd (tests/fixtures/junit/junit-10.xsd, MIT).

Here: boot (a kvm cell skipped by the real probe; the booted ones are
validated in tests/test_boot_real.py), host, fmt, lint and docs, each from
the real command.  build and flake-check are validated wherever
tests/nixtest.py reads them, gate in tests/test_gate.py, the merged report
in tests/test_report.py, and a flaky pass in tests/test_retries.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import run_ccvm
from junit_schema import assert_valid, schema_errors

from ccvm.report.junit import MAX_CASE_TEXT, to_xml
from ccvm.report.results import Case, Outcome, Suite

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = str(Path(sys.executable).parent)


def ccvm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return run_ccvm(*args, cwd=ROOT, timeout=timeout, env=env)


@pytest.fixture
def small_tree(tmp_path: Path) -> Path:
    """A git tree with a shell script that shellcheck and shfmt flag, and Python that passes."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "bad.sh").write_text("#!/bin/sh\nif [ 1 ]; then\necho $1\nfi\n")
    (tree / "ok.py").write_text("X = 1\n")
    subprocess.run(["git", "init", "-q", str(tree)], check=True, timeout=30)
    subprocess.run(["git", "-C", str(tree), "add", "."], check=True, timeout=30)
    return tree


@pytest.mark.parametrize("command", ["fmt", "lint"])
def test_fmt_and_lint_junit_is_valid_with_failures_and_passes(small_tree, tmp_path, command):
    junit = tmp_path / f"{command}.xml"
    result = ccvm(command, "--root", str(small_tree), "--junit", str(junit))
    assert result.returncode == 1, result.stdout + result.stderr  # bad.sh fails
    assert_valid(junit)
    assert "<failure" in junit.read_text()


def test_docs_junit_is_valid(tmp_path):
    junit = tmp_path / "docs.xml"
    result = ccvm("docs", "--junit", str(junit))
    assert result.returncode == 0, result.stdout + result.stderr
    assert_valid(junit)


def test_host_junit_is_valid(tmp_path):
    junit = tmp_path / "host.xml"
    result = ccvm("host", "--junit", str(junit))
    assert result.returncode == 0, result.stdout + result.stderr
    assert_valid(junit)


def test_boot_junit_of_a_kvm_cell_without_kvm_is_valid_and_says_why(tmp_path):
    junit = tmp_path / "boot.xml"
    result = ccvm("boot", "--cell", "x86_64-kvm-q35", "--junit", str(junit), "--reports", str(tmp_path / "r"))
    assert result.returncode in (0, 1), result.stderr
    assert_valid(junit)
    text = junit.read_text()
    assert "disabled=" not in text


def test_the_golden_file_is_valid():
    assert_valid(ROOT / "tests" / "fixtures" / "junit" / "boot-golden.xml")


def test_what_junit_xml_used_to_write_is_invalid(tmp_path):
    """The schema really rejects the attributes the old writer put in: the check can fail."""
    old = tmp_path / "old.xml"
    old.write_text(
        '<testsuites disabled="0" errors="0" failures="0" tests="1" time="50.20400000000001" skipped="0">'
        '<testsuite disabled="0" errors="0" failures="0" name="s" skipped="0" tests="1" time="50.20400000000001">'
        '<testcase name="c" time="50.204000"/></testsuite></testsuites>'
    )
    errors = "\n".join(schema_errors(old))
    assert "disabled" in errors and "skipped" in errors


def test_huge_output_keeps_the_tail_and_the_whole_text_in_a_file(tmp_path):
    big = "".join(f"console line {n}\n" for n in range(200_000))  # about 3.5 MB
    suite = Suite(name="boot.x", cases=[Case(name="c", outcome=Outcome.FAIL, message="m", details=big, output=big)])
    path = tmp_path / "boot.xml"
    path.write_text(to_xml([suite], spill_dir=tmp_path / "boot.logs"))
    assert_valid(path)
    assert path.stat().st_size < 3 * MAX_CASE_TEXT
    text = path.read_text()
    assert "console line 199999" in text and "console line 0\n" not in text
    saved = sorted((tmp_path / "boot.logs").iterdir())
    assert [p.name for p in saved] == ["boot.x.c.failure.log", "boot.x.c.out.log"]
    assert all(p.read_text() == big for p in saved)
    assert f"full text: {saved[1]}" in text
