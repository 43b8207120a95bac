"""How every command that checks something ends: the JUnit file, then the
findings, the table or checklist and the summary, then the exit status.

``end`` is the one ending (boot, host, gate and, through ``report``, fmt,
lint, docs, build and flake-check).  The JUnit file is written first, so
what finished is reported even when the run was stopped or the output
cannot be printed.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from ccvm.errors import CcvmError, ChecksFailed, UsageError
from ccvm.report.junit import write_junit
from ccvm.report.results import Outcome, Suite, overall_ok
from ccvm.report.table import table

DETAILS_MAX_LINES = 60  # per failed case on the terminal; JUnit keeps all of it


def add_junit_option(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument(
        "--junit",
        type=Path,
        default=Path(f"reports/junit/{name}.xml"),
        metavar="PATH",
        help="JUnit XML output (default: %(default)s)",
    )


def add_root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="project directory to check (default: the current directory)",
    )


def root_from(args: argparse.Namespace) -> Path:
    if not args.root.is_dir():
        raise UsageError(f"--root {args.root}: not a directory")
    return Path(os.path.abspath(args.root))


def end(
    suites: list[Suite],
    *,
    junit: Path,
    lines: Sequence[str] = (),
    failure: CcvmError | None = None,
    stopped: CcvmError | None = None,
) -> int:
    """Write JUnit; raise ``stopped`` (the run was interrupted) right after it;
    print ``lines``; raise ``failure``, else return 0."""
    write_junit(junit, suites)
    if stopped is not None:
        raise stopped
    for line in lines:
        print(line)
    if failure is not None:
        raise failure
    return 0


def _failure_lines(case_message: str, details: str) -> list[str]:
    lines = details.rstrip().splitlines()
    shown = [f"FAIL {case_message}", *(f"    {line}" for line in lines[:DETAILS_MAX_LINES])]
    if len(lines) > DETAILS_MAX_LINES:
        shown.append(f"    ... {len(lines) - DETAILS_MAX_LINES} more lines in the JUnit file")
    return shown


def report(
    suites: list[Suite], *, junit: Path, what: str, first_column: str = "check", failure: str | None = None
) -> int:
    """The findings (FAIL lines), the table and a count; ChecksFailed on any failure."""
    failed = [(suite, case) for suite in suites for case in suite.cases if case.outcome is Outcome.FAIL]
    lines = [""] if failed else []
    for suite, case in failed:
        lines += _failure_lines(case.message or f"{suite.name}: {case.name}", case.details)
    skipped = sum(case.outcome is Outcome.SKIP for suite in suites for case in suite.cases)
    checked = sum(len(suite.cases) for suite in suites) - skipped  # what ran to a verdict
    lines.append("")
    if suites:
        lines.append(table(suites, first_column=first_column, prefix=f"{what}."))
    lines += [note for suite in suites for note in suite.notes]
    known = sum(suite.known for suite in suites)
    summary = f"{what}: {checked} checked, {len(failed)} failed, {skipped} skipped"
    summary += f" ({known} known finding(s) in matrix/baseline.yaml)" if known else ""
    lines += [f"\n{summary}", f"JUnit: {junit}"]
    problem = None
    if not overall_ok(suites):
        problem = ChecksFailed(failure or f"{what}: {len(failed)} finding(s); see FAIL lines above and {junit}")
    return end(suites, junit=junit, lines=lines, failure=problem)
