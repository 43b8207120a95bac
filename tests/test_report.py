import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import run_ccvm
from junit_schema import assert_valid

from ccvm.report.junit import write_junit
from ccvm.report.results import Case, Outcome, Suite

ROOT = Path(__file__).resolve().parent.parent


def test_merges_every_file_and_names_the_reproduce_command(tmp_path):
    junit_dir = tmp_path / "artifacts"
    write_junit(
        junit_dir / "reports-boot-a" / "boot.xml",
        [
            Suite(
                name="boot.aarch64-tcg-virt",
                cases=[
                    Case(name="argv-verbatim", outcome=Outcome.FAIL, message="argv[2]: expected 'a', saw 'b'"),
                    Case(name="exit-status", outcome=Outcome.PASS),
                ],
            )
        ],
    )
    write_junit(
        junit_dir / "reports-boot-k" / "boot.xml",
        [
            Suite(
                name="boot.x86_64-kvm-q35",
                cases=[Case(name="argv-verbatim", outcome=Outcome.SKIP, message="KVM probe failed")],
            )
        ],
    )
    write_junit(
        junit_dir / "reports-host" / "host.xml",
        [Suite(name="host.argv", cases=[Case(name="spaces", outcome=Outcome.PASS)])],
    )
    summary = tmp_path / "summary.md"
    merged = tmp_path / "all.xml"
    result = run_ccvm(
        "report",
        "--junit-dir",
        str(junit_dir),
        "--junit",
        str(merged),
        "--summary",
        str(summary),
        "--fail-on-failure",
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1
    root = ET.parse(merged).getroot()
    assert [s.get("name") for s in root.iter("testsuite")] == [
        "boot.aarch64-tcg-virt",
        "boot.x86_64-kvm-q35",
        "host.argv",
    ]
    assert root.get("failures") == "1" and root.get("tests") == "4"
    assert root.get("skipped") is None  # junit-10.xsd has no skipped on <testsuites>; each suite keeps its own
    assert [s.get("skipped") for s in root.iter("testsuite")] == ["0", "1", "0"]
    assert_valid(merged)
    text = summary.read_text()
    assert "1 suite(s) failed" in text
    assert "Reproduce: `ccvm boot --cell aarch64-tcg-virt`" in text  # by default: ccvm's own commands
    assert "nox" not in text and ".ci/setup" not in text
    assert "| boot.x86_64-kvm-q35 | skipped |" in text and "KVM probe failed" in text


def test_missing_directory_is_one_line(tmp_path):
    result = run_ccvm("report", "--junit-dir", str(tmp_path / "nope"), cwd=ROOT, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def run_report(*args: str) -> subprocess.CompletedProcess:
    return run_ccvm("report", *args, cwd=ROOT, timeout=60)


def junit_dir_with(tmp_path: Path, *cases: Case) -> Path:
    junit_dir = tmp_path / "artifacts"
    write_junit(junit_dir / "host.xml", [Suite(name="host.argv", cases=list(cases))])
    return junit_dir


def test_all_skipped_is_not_called_green(tmp_path):
    junit_dir = junit_dir_with(tmp_path, Case(name="spaces", outcome=Outcome.SKIP, message="no QEMU"))
    result = run_report("--junit-dir", str(junit_dir), "--junit", str(tmp_path / "all.xml"))
    assert result.returncode == 0, result.stderr
    assert "## ccvm: no failures, 1 skipped (skipped is not passed)" in result.stdout
    assert "all green" not in result.stdout


def test_all_passed_is_green(tmp_path):
    junit_dir = junit_dir_with(tmp_path, Case(name="spaces", outcome=Outcome.PASS))
    result = run_report("--junit-dir", str(junit_dir), "--junit", str(tmp_path / "all.xml"))
    assert result.returncode == 0 and "## ccvm: all green" in result.stdout


@pytest.mark.parametrize(
    ("option", "target", "words"),
    [
        ("--summary", "nodir/sum.md", "cannot append the summary"),
        ("--summary", "/proc/version", "cannot append the summary"),
        ("--junit", "DIR", "cannot write the merged JUnit file"),
    ],
)
def test_unwritable_output_paths_are_one_line_usage_errors(tmp_path, option, target, words):
    junit_dir = junit_dir_with(tmp_path, Case(name="spaces", outcome=Outcome.PASS))
    (tmp_path / "DIR").mkdir()
    path = target if target.startswith("/") else str(tmp_path / target)
    args = ["--junit-dir", str(junit_dir)]
    args += ["--junit", str(tmp_path / "all.xml")] if option != "--junit" else []
    result = run_report(*args, option, path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"ccvm: error: {option} {path}: {words}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def failing_suites(tmp_path: Path, *names: str) -> Path:
    junit_dir = tmp_path / "artifacts"
    suites = [Suite(name=name, cases=[Case(name="c", outcome=Outcome.FAIL, message="broke")]) for name in names]
    write_junit(junit_dir / "all.xml", suites)
    return junit_dir


SUITES = ("boot.x86_64-tcg-q35", "fmt.shfmt", "lint.ruff-check", "flake-check.x86_64-linux.greeting", "pytest")


@pytest.mark.parametrize(
    ("style", "lines"),
    [
        (
            [],
            [
                "ccvm boot --cell x86_64-tcg-q35",
                "ccvm fmt --tool shfmt",
                "ccvm lint",
                "ccvm flake-check",
            ],
        ),
        (
            ["--reproduce", "nox"],
            [
                "bash .ci/setup && .venv/bin/nox -s boot -- --cell x86_64-tcg-q35",
                "bash .ci/setup && .venv/bin/nox -s fmt -- --tool shfmt",
                "bash .ci/setup && .venv/bin/nox -s lint",
                "bash .ci/setup && .venv/bin/nox -s flake_check",
            ],
        ),
    ],
)
def test_reproduce_lines_name_commands_of_the_repository_at_hand(tmp_path, style, lines):
    """ccvm's commands in a project that adopted ccvm; ccvm's own nox sessions with --reproduce nox
    (what ccvm generate writes into ccvm's own workflow); nothing for a suite ccvm did not write."""
    junit_dir = failing_suites(tmp_path, *SUITES)
    result = run_report("--junit-dir", str(junit_dir), "--junit", str(tmp_path / "merged.xml"), *style)
    assert result.returncode == 0, result.stderr
    said = [line.removeprefix("Reproduce: `").removesuffix("`") for line in result.stdout.splitlines()]
    assert [line for line in said if line.startswith(("ccvm ", "bash "))] == lines
    assert "### pytest" in result.stdout  # its failures are listed, with no made-up command


def test_an_unknown_reproduce_style_is_a_usage_error(tmp_path):
    junit_dir = failing_suites(tmp_path, "boot.x")
    result = run_report("--junit-dir", str(junit_dir), "--reproduce", "make")
    assert result.returncode == 2 and "--reproduce" in result.stderr and "Traceback" not in result.stderr
