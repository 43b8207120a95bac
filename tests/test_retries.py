"""Retry bookkeeping of the boot runner.

A real guest cannot be made flaky on demand, so these tests replace one
attempt (CellRunner._attempt) with canned suites; everything else (the
retry loop, flaky marking, attempt history) is the real code.
"""

from __future__ import annotations

from pathlib import Path

from ccvm.checks.boot.runner import BootOptions, CellRunner
from ccvm.matrix.axes import Accel, Arch, Machine
from ccvm.matrix.model import BootSettings, Cell
from ccvm.report.results import Case, Outcome, Suite

CELL = Cell(arch=Arch.X86_64, accel=Accel.TCG, machine=Machine.Q35, settings=BootSettings(retries=2))


def runner(tmp_path: Path, outcomes: list[Outcome]) -> tuple[CellRunner, list[int]]:
    options = BootOptions(cells=(CELL,), jobs=1, reports=tmp_path)
    cell_runner = CellRunner(matrix=None, options=options, store=None, probe=None)  # type: ignore[arg-type]
    calls: list[int] = []

    def attempt(cell: Cell, number: int) -> Suite:
        calls.append(number)
        outcome = outcomes[number - 1]
        message = "" if outcome is Outcome.PASS else f"boot {number} timed out"
        return Suite(name="boot.x", cases=[Case(name="argv-verbatim", outcome=outcome, message=message)])

    cell_runner.unavailable = lambda cell: None  # type: ignore[method-assign]
    cell_runner._attempt = attempt  # type: ignore[method-assign]
    return cell_runner, calls


def test_pass_after_a_failure_is_flaky_and_keeps_the_history(tmp_path):
    cell_runner, calls = runner(tmp_path, [Outcome.FAIL, Outcome.PASS, Outcome.PASS])
    suite = cell_runner.run(CELL)
    assert calls == [1, 2]
    assert suite.outcome is Outcome.PASS and suite.flaky
    assert suite.properties["attempts"] == "2" and suite.properties["flaky"] == "true"
    assert "attempt 1: boot 1 timed out" in suite.cases[0].output


def test_every_attempt_failing_fails(tmp_path):
    cell_runner, calls = runner(tmp_path, [Outcome.FAIL] * 3)
    suite = cell_runner.run(CELL)
    assert calls == [1, 2, 3]
    assert suite.outcome is Outcome.FAIL and not suite.flaky
    assert suite.properties["attempts"] == "3"


def test_first_pass_is_not_flaky(tmp_path):
    cell_runner, calls = runner(tmp_path, [Outcome.PASS])
    suite = cell_runner.run(CELL)
    assert calls == [1] and not suite.flaky


def test_cancelled_run_starts_no_new_attempt(tmp_path):
    cell_runner, calls = runner(tmp_path, [Outcome.FAIL] * 3)
    cell_runner.cancelled.set()
    cell_runner.run(CELL)
    assert calls == [1]


def test_flaky_pass_is_written_as_surefire_writes_it_and_validates(tmp_path):
    from junit_schema import assert_valid

    from ccvm.report.junit import to_xml

    cell_runner, _ = runner(tmp_path, [Outcome.FAIL, Outcome.FAIL, Outcome.PASS])
    suite = cell_runner.run(CELL)
    path = tmp_path / "boot.xml"
    path.write_text(to_xml([suite]))
    assert_valid(path)
    import xml.etree.ElementTree as ET

    case = ET.parse(path).getroot().find(".//testcase")
    assert case.find("failure") is None  # the case passed
    flaky = case.findall("flakyFailure")
    assert [f.get("message") for f in flaky] == ["boot 1 timed out", "boot 2 timed out"]
    assert all(f.get("type") for f in flaky)
