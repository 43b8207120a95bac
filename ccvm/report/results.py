"""Results shared by every kind of check: a suite of cases, each passed,
failed or skipped (with the reason), timed.  A case that passed after
failing in an earlier attempt (the boot runner's retries) carries those
failures, and is flaky; a suite is flaky when it passed with a flaky case."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skipped"


@dataclass(frozen=True, kw_only=True)
class EarlierFailure:
    """This case failing in an attempt before the one its suite reports."""

    attempt: int  # 1 for the first attempt
    message: str
    logs: str = ""  # the directory with that attempt's logs


@dataclass(kw_only=True)
class Case:
    name: str
    outcome: Outcome
    seconds: float = 0.0
    message: str = ""  # one line: why it failed or was skipped
    details: str = ""  # longer text for a failure (console tail, diff, log)
    output: str = ""  # system-out
    earlier_failures: tuple[EarlierFailure, ...] = ()  # this case in earlier attempts (retries)
    file: str = ""  # the file the case is about, relative to the project root, when it is about one
    line: int | None = None
    known: bool = False  # skipped because every finding is in the adoption baseline (JUnit: type="baseline")

    @property
    def flaky(self) -> bool:
        return self.outcome is Outcome.PASS and bool(self.earlier_failures)


@dataclass(kw_only=True)
class Suite:
    """One JUnit testsuite: a cell, a build target, a file under lint..."""

    name: str  # also the JUnit classname of its cases, e.g. boot.x86_64-tcg-q35
    cases: list[Case] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    log_path: str = ""  # where the console log or tool output is
    seconds: float | None = None  # its wall time, when known; else the sum of its cases' times
    known: int = 0  # findings the project's baseline (matrix/baseline.yaml) knows, met in this run
    notes: list[str] = field(default_factory=list)  # lines the report prints after the table

    @property
    def outcome(self) -> Outcome:
        outcomes = {case.outcome for case in self.cases}
        if Outcome.FAIL in outcomes:
            return Outcome.FAIL
        if outcomes == {Outcome.SKIP}:
            return Outcome.SKIP
        return Outcome.PASS

    @property
    def flaky_cases(self) -> list[Case]:
        return [case for case in self.cases if case.flaky]

    @property
    def flaky(self) -> bool:
        """Passed, with a case that failed in an earlier attempt."""
        return self.outcome is Outcome.PASS and bool(self.flaky_cases)

    @property
    def wall_seconds(self) -> float:
        return self.seconds if self.seconds is not None else sum(case.seconds for case in self.cases)

    @property
    def reason(self) -> str:
        wanted = Outcome.FAIL if self.outcome is Outcome.FAIL else Outcome.SKIP
        return next((case.message for case in self.cases if case.outcome is wanted and case.message), "")


def overall_ok(suites: list[Suite]) -> bool:
    return all(suite.outcome is not Outcome.FAIL for suite in suites)
