"""Retries of a boot cell, through the pure functions over its attempts
(ccvm.checks.boot.retries): no runner, no guest, nothing patched."""

from __future__ import annotations

import pytest

from ccvm.checks.boot.retries import Verdict, combine, verdict, wants_another
from ccvm.report.results import Case, Outcome, Suite

P, F = Outcome.PASS, Outcome.FAIL


def attempt(number: int, outcome: Outcome) -> Suite:
    message = "" if outcome is P else f"boot {number} timed out"
    return Suite(name="boot.x", cases=[Case(name="argv-verbatim", outcome=outcome, message=message, output="log")])


def run_attempts(outcomes: list[Outcome], *, retries: int, cancel_after: int | None = None) -> list[Suite]:
    """The runner's loop, with canned attempts standing in for boots."""
    done: list[Suite] = []
    while wants_another([a.outcome for a in done], retries=retries, cancelled=len(done) == cancel_after):
        done.append(attempt(len(done) + 1, outcomes[len(done)]))
    return done


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([P], Verdict.PASS),
        ([F, P], Verdict.FLAKY),
        ([F, F, P], Verdict.FLAKY),
        ([F], Verdict.FAIL),
        ([F, F], Verdict.FAIL),
    ],
)
def test_verdict_of_attempts(outcomes, expected):
    assert verdict(outcomes) is expected


def test_no_attempt_is_a_failure():
    assert verdict([]) is Verdict.FAIL


def test_pass_after_a_failure_is_flaky_and_keeps_the_history():
    attempts = run_attempts([F, P, P], retries=2)
    assert len(attempts) == 2
    suite = combine(attempts)
    assert suite.outcome is Outcome.PASS and suite.flaky
    assert suite.properties["attempts"] == "2" and suite.properties["flaky"] == "true"
    assert suite.cases[0].output == "earlier attempts failed:\nattempt 1: boot 1 timed out\nlog"


def test_every_attempt_failing_fails_after_all_retries():
    attempts = run_attempts([F, F, F, F], retries=2)
    assert len(attempts) == 3
    suite = combine(attempts)
    assert suite.outcome is Outcome.FAIL and not suite.flaky and "flaky" not in suite.properties
    assert suite.properties["attempts"] == "3"
    assert "attempt 2: boot 2 timed out" in suite.cases[0].output


def test_first_pass_is_not_flaky_and_has_no_history():
    attempts = run_attempts([P, P], retries=2)
    suite = combine(attempts)
    assert len(attempts) == 1 and not suite.flaky and suite.cases[0].output == "log"


def test_no_retries_means_one_attempt():
    assert len(run_attempts([F, F], retries=0)) == 1


def test_cancelled_run_starts_no_new_attempt():
    assert len(run_attempts([F, F, F], retries=2, cancel_after=1)) == 1


def test_a_cancelled_run_still_makes_its_first_attempt():
    """Its cases then say the run stopped; a cell is never reported with no cases."""
    assert wants_another([], retries=0, cancelled=True)


def test_flaky_pass_is_written_as_surefire_writes_it_and_validates(tmp_path):
    import xml.etree.ElementTree as ET

    from junit_schema import assert_valid

    from ccvm.report.junit import to_xml

    suite = combine(run_attempts([F, F, P], retries=2))
    path = tmp_path / "boot.xml"
    path.write_text(to_xml([suite]))
    assert_valid(path)
    case = ET.parse(path).getroot().find(".//testcase")
    assert case.find("failure") is None  # the case passed
    flaky = case.findall("flakyFailure")
    assert [f.get("message") for f in flaky] == ["boot 1 timed out", "boot 2 timed out"]
    assert all(f.get("type") for f in flaky)
