"""Retries of a boot cell, as pure functions over its attempts.

A cell is booted until an attempt passes, its retries are used up, or the
run is stopped.  The cell is then reported as its last attempt, each case
carrying the failures of that same case in the earlier attempts: a case
that passed after failing is flaky; a case that never failed is not, even
when another case of the cell was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ccvm.report.results import Case, EarlierFailure, Outcome


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One attempt of a cell: its cases, in the declared order."""

    number: int  # 1 for the first
    log_dir: Path  # reports/boot/CELL/attempt-N
    cases: tuple[Case, ...]

    @property
    def outcome(self) -> Outcome:
        return Outcome.FAIL if any(case.outcome is Outcome.FAIL for case in self.cases) else Outcome.PASS


def wants_another(outcomes: Sequence[Outcome], *, retries: int, cancelled: bool) -> bool:
    """Whether to boot the cell (again) after these attempts: always once
    (a stopped run reports its cases stopped), then while failing, retries
    are left and the run goes on."""
    if not outcomes:
        return True
    return outcomes[-1] is not Outcome.PASS and len(outcomes) <= retries and not cancelled


def with_history(attempts: Sequence[Attempt]) -> list[Case]:
    """The last attempt's cases, each with its own failures in the earlier attempts."""
    *earlier, last = attempts
    cases = []
    for case in last.cases:
        failures = tuple(
            EarlierFailure(attempt=attempt.number, message=failed.message, logs=str(attempt.log_dir))
            for attempt in earlier
            for failed in attempt.cases
            if failed.name == case.name and failed.outcome is Outcome.FAIL
        )
        history = "".join(f"attempt {f.attempt}: {f.message}\n" for f in failures)
        output = f"earlier attempts of this case failed:\n{history}{case.output}" if failures else case.output
        cases.append(dataclasses.replace(case, earlier_failures=failures, output=output))
    return cases
