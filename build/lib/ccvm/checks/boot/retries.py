"""Retries of a boot cell, as pure functions over its attempts.

A cell is booted until an attempt passes, its retries are used up, or the
run is stopped.  The attempts then make one suite: the last attempt, with
the earlier failures in each case's output, and a verdict:

    pass   the first attempt passed
    flaky  an attempt passed after one or more failed
    fail   no attempt passed
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from pathlib import Path

from ccvm.report.results import EarlierAttempt, Outcome, Suite


class Verdict(enum.StrEnum):
    PASS = "pass"
    FLAKY = "flaky"
    FAIL = "fail"


def verdict(outcomes: Sequence[Outcome]) -> Verdict:
    """The verdict of a cell's attempts, in the order they ran."""
    if not outcomes or outcomes[-1] is not Outcome.PASS:
        return Verdict.FAIL
    return Verdict.FLAKY if any(o is not Outcome.PASS for o in outcomes[:-1]) else Verdict.PASS


def wants_another(outcomes: Sequence[Outcome], *, retries: int, cancelled: bool) -> bool:
    """Whether to boot the cell (again) after these attempts: always once
    (a stopped run reports its cases stopped), then while failing, retries
    are left and the run goes on."""
    if not outcomes:
        return True
    return outcomes[-1] is not Outcome.PASS and len(outcomes) <= retries and not cancelled


def combine(attempts: Sequence[Suite]) -> Suite:
    """One suite for the cell: the last attempt, carrying the earlier failures."""
    suite = attempts[-1]
    suite.properties["attempts"] = str(len(attempts))
    suite.earlier_attempts = tuple(
        EarlierAttempt(number=number, reason=attempt.reason, logs=_attempt_dir(attempt))
        for number, attempt in enumerate(attempts[:-1], start=1)
    )
    earlier = [f"attempt {number}: {attempt.reason}" for number, attempt in enumerate(attempts[:-1], start=1)]
    if earlier:
        history = "earlier attempts failed:\n" + "\n".join(earlier)
        for case in suite.cases:
            case.output = f"{history}\n{case.output}".strip()
    suite.flaky = verdict([attempt.outcome for attempt in attempts]) is Verdict.FLAKY
    if suite.flaky:
        suite.properties["flaky"] = "true"
    return suite


def _attempt_dir(attempt: Suite) -> str:
    """reports/boot/CELL/attempt-N, from the attempt's console log under it."""
    for parent in Path(attempt.log_path).parents if attempt.log_path else ():
        if parent.name.startswith("attempt-"):
            return str(parent)
    return ""
