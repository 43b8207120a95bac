"""Results shared by every kind of check: a suite of cases, each passed,
failed or skipped (with the reason), timed."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skipped"


@dataclass(kw_only=True)
class Case:
    name: str
    outcome: Outcome
    seconds: float = 0.0
    message: str = ""  # one line: why it failed or was skipped
    details: str = ""  # longer text for a failure (console tail, diff, log)
    output: str = ""  # system-out


@dataclass(frozen=True, kw_only=True)
class EarlierAttempt:
    """A failed attempt before the one a suite reports (the boot runner's retries)."""

    number: int  # 1 for the first attempt
    reason: str
    logs: str = ""  # the directory with that attempt's logs


@dataclass(kw_only=True)
class Suite:
    """One JUnit testsuite: a cell, a build target, a file under lint..."""

    name: str  # also the JUnit classname of its cases, e.g. boot.x86_64-tcg-q35
    cases: list[Case] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    flaky: bool = False
    log_path: str = ""  # where the console log or tool output is
    earlier_attempts: tuple[EarlierAttempt, ...] = ()  # failed attempts before this one (retries)

    @property
    def outcome(self) -> Outcome:
        outcomes = {case.outcome for case in self.cases}
        if Outcome.FAIL in outcomes:
            return Outcome.FAIL
        if outcomes == {Outcome.SKIP}:
            return Outcome.SKIP
        return Outcome.PASS

    @property
    def reason(self) -> str:
        wanted = Outcome.FAIL if self.outcome is Outcome.FAIL else Outcome.SKIP
        return next((case.message for case in self.cases if case.outcome is wanted and case.message), "")


def overall_ok(suites: list[Suite]) -> bool:
    return all(suite.outcome is not Outcome.FAIL for suite in suites)
