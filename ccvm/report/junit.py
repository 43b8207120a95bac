"""JUnit XML for every check, through junit-xml.

Console text holds escape and control characters: ANSI sequences are
removed and characters XML 1.0 cannot carry are replaced, so the file
always parses.
"""

from __future__ import annotations

from pathlib import Path

from junit_xml import TestCase, TestSuite, to_xml_report_string

from ccvm.errors import UsageError
from ccvm.files import write_atomic
from ccvm.report.results import Outcome, Suite
from ccvm.text import clean_text


def _case(suite: Suite, case) -> TestCase:
    test = TestCase(
        name=case.name,
        classname=suite.name,
        elapsed_sec=round(case.seconds, 3),
        stdout=clean_text(case.output) or None,
    )
    if case.outcome is Outcome.FAIL:
        test.add_failure_info(message=clean_text(case.message), output=clean_text(case.details) or None)
    elif case.outcome is Outcome.SKIP:
        test.add_skipped_info(message=clean_text(case.message))
    return test


def to_xml(suites: list[Suite]) -> str:
    junit_suites = [
        TestSuite(
            suite.name,
            [_case(suite, case) for case in suite.cases],
            properties={key: clean_text(value) for key, value in sorted(suite.properties.items())},
        )
        for suite in suites
    ]
    return to_xml_report_string(junit_suites, prettyprint=True, encoding="utf-8")


def write_junit(path: Path, suites: list[Suite], *, option: str = "--junit") -> None:
    """Write the file; a path that cannot be written is a UsageError naming the option that gave it."""
    try:
        write_atomic(path, to_xml(suites).encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write the JUnit file: {exc.strerror or exc}") from None
