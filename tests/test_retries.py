"""Retries, through the real boot executor: `ccvm boot` with a declared
launcher (a shell script, no guest) whose first scenario fails on its
first run only.  The cell passes on its retry, and exactly that case is
flaky: in the JUnit (flakyFailure on that case alone), the table and the
progress line.  Then the pure rules: when another attempt is made, and
how a case carries its own earlier failures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from clirun import run_ccvm
from junit_schema import assert_valid

from ccvm.checks.boot.retries import Attempt, wants_another, with_history
from ccvm.report.results import Case, Outcome

SEED = Path(__file__).resolve().parent / "fixtures" / "seed-project"
MATRIX_FILES = ("boot.yaml", "guest.yaml", "builds.yaml", "gate.yaml", "actions.yaml")
CELL = "x86_64-tcg-q35"

# Fails the scenario named "first" the first time it runs (a state file marks the run),
# prints what the scenario expects otherwise.
FLAKY_LAUNCHER = """#!/bin/sh
state="$FLAKY_STATE/$SCENARIO.ran"
if [ "$SCENARIO" = "$FAIL_ONCE" ] && [ ! -e "$state" ]; then
\t: >"$state"
\techo "BROKEN:$SCENARIO"
\texit 1
fi
echo "OK:$SCENARIO"
"""


def launcher_yaml(state: Path, fail_once: str) -> str:
    return f"""name: flaky
argv: [bin/flaky]
env: {{FLAKY_STATE: "{state}", FAIL_ONCE: "{fail_once}"}}
share:
  overlay: {{default: true}}
boot:
  timeout: 30
  scenarios:
    - {{name: first, share: overlay, env: {{SCENARIO: first}}, expect: ['^OK:first$']}}
    - {{name: second, share: overlay, env: {{SCENARIO: second}}, expect: ['^OK:second$']}}
"""


def flaky_project(tmp_path: Path, fail_once: str) -> Path:
    project = tmp_path / "project"
    (project / "matrix").mkdir(parents=True)
    for name in MATRIX_FILES:
        (project / "matrix" / name).write_text((SEED / "matrix" / name).read_text())
    state = tmp_path / "state"
    state.mkdir()
    (project / "matrix" / "launcher.yaml").write_text(launcher_yaml(state, fail_once))
    launcher = project / "bin" / "flaky"
    launcher.parent.mkdir()
    launcher.write_text(FLAKY_LAUNCHER)
    launcher.chmod(0o755)
    return project


def boot(project: Path, retries: int):
    junit = project / "junit.xml"
    result = run_ccvm("boot", "--cell", CELL, "--retries", str(retries), "--junit", str(junit), cwd=project)
    assert_valid(junit)
    suite = ET.parse(junit).getroot().find("testsuite")
    return result, suite, {case.get("name"): case for case in suite.iter("testcase")}


def test_a_case_that_fails_once_is_flaky_and_the_other_is_not(tmp_path, qemu_system_x86_64_bin):
    project = flaky_project(tmp_path, "first")
    result, suite, cases = boot(project, retries=1)
    assert result.returncode == 0, result.stdout + result.stderr
    flaky = cases["first"].findall("flakyFailure")
    assert [f.get("message") for f in flaky] == ["no output line matches '^OK:first$'"]
    assert "attempt-1" in flaky[0].findtext("system-out")
    assert cases["second"].findall("flakyFailure") == []  # passed both times: not flaky
    assert cases["first"].find("failure") is None and cases["second"].find("failure") is None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["attempts"] == "2" and properties["flaky"] == "first"
    assert f"boot.{CELL}: flaky pass" in result.stdout and "(passed on a retry: first)" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith(CELL))
    assert row.split()[1] == "flaky"
    assert "first passed on a retry (attempt 1: no output line matches '^OK:first$')" in result.stdout
    # ccvm report's Markdown summary names the same cell and that case alone as flaky.
    reports = project / "collected"
    reports.mkdir()
    (reports / "boot.xml").write_bytes((project / "junit.xml").read_bytes())
    summary = project / "summary.md"
    merged = run_ccvm(
        "report",
        "--junit-dir",
        str(reports),
        "--junit",
        str(project / "all.xml"),
        "--summary",
        str(summary),
        cwd=project,
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    text = summary.read_text()
    assert "### Flaky (passed only on a retry)" in text
    flaky_lines = [line for line in text.splitlines() if line.startswith("- ") and "failed first with" in line]
    assert len(flaky_lines) == 1 and f"{CELL}" in flaky_lines[0] and "/ first:" in flaky_lines[0]
    merged_cases = {c.get("name"): c for c in ET.parse(project / "all.xml").getroot().iter("testcase")}
    assert merged_cases["first"].findall("flakyFailure") and not merged_cases["second"].findall("flakyFailure")


def test_without_retries_the_failure_stands(tmp_path, qemu_system_x86_64_bin):
    result, suite, cases = boot(flaky_project(tmp_path, "first"), retries=0)
    assert result.returncode == 1
    failure = cases["first"].find("failure")
    assert failure.get("message") == "no output line matches '^OK:first$'"
    assert "the launcher reported exit status 1, the scenario expects 0" in failure.text
    assert cases["first"].findall("rerunFailure") == [] and cases["second"].find("failure") is None
    assert {p.get("name"): p.get("value") for p in suite.iter("property")}["attempts"] == "1"


def test_a_first_pass_is_one_attempt_and_nothing_is_flaky(tmp_path, qemu_system_x86_64_bin):
    result, suite, cases = boot(flaky_project(tmp_path, "nobody"), retries=2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(case.findall("flakyFailure") == [] for case in cases.values())
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["attempts"] == "1" and "flaky" not in properties


# -- the pure rules --------------------------------------------------------------

P, F = Outcome.PASS, Outcome.FAIL


def test_another_attempt_only_while_failing_with_retries_left_and_the_run_going_on():
    assert wants_another([], retries=0, cancelled=True)  # always once: a stopped run still reports its cases
    assert not wants_another([P], retries=3, cancelled=False)
    assert wants_another([F], retries=1, cancelled=False)
    assert not wants_another([F, F], retries=1, cancelled=False)
    assert not wants_another([F], retries=1, cancelled=True)


def test_a_case_carries_only_its_own_earlier_failures():
    def attempt(number: int, **outcomes: Outcome) -> Attempt:
        cases = tuple(
            Case(name=n, outcome=o, message=f"{n} broke in {number}" if o is F else "") for n, o in outcomes.items()
        )
        return Attempt(number=number, log_dir=Path(f"reports/boot/c/attempt-{number}"), cases=cases)

    cases = with_history([attempt(1, a=F, b=P), attempt(2, a=F, b=F), attempt(3, a=P, b=F)])
    a, b = cases
    assert [(f.attempt, f.message) for f in a.earlier_failures] == [(1, "a broke in 1"), (2, "a broke in 2")]
    assert a.flaky and a.output.startswith("earlier attempts of this case failed:\nattempt 1: a broke in 1\n")
    assert [f.attempt for f in b.earlier_failures] == [2] and not b.flaky and b.outcome is F
