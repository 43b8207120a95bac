"""How check commands end: the findings, the table, JUnit and the exit
status (fmt, lint, docs, build, flake-check share it)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ccvm.errors import ChecksFailed, UsageError
from ccvm.report.junit import write_junit
from ccvm.report.progress import table
from ccvm.report.results import Outcome, Suite, overall_ok

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


def _print_failure(case_message: str, details: str) -> None:
    print(f"FAIL {case_message}")
    lines = details.rstrip().splitlines()
    for line in lines[:DETAILS_MAX_LINES]:
        print(f"    {line}")
    if len(lines) > DETAILS_MAX_LINES:
        print(f"    ... {len(lines) - DETAILS_MAX_LINES} more lines in the JUnit file")


def report(
    suites: list[Suite], *, junit: Path, what: str, first_column: str = "check", failure: str | None = None
) -> int:
    """Print the findings and the table, write JUnit; ChecksFailed on any failure."""
    write_junit(junit, suites)
    failed = [(suite, case) for suite in suites for case in suite.cases if case.outcome is Outcome.FAIL]
    if failed:
        print()
    for suite, case in failed:
        _print_failure(case.message or f"{suite.name}: {case.name}", case.details)
    skipped = sum(case.outcome is Outcome.SKIP for suite in suites for case in suite.cases)
    checked = sum(len(suite.cases) for suite in suites)
    print()
    if suites:
        print(table(suites, first_column=first_column, prefix=f"{what}."))
    print(f"\n{what}: {checked} checked, {len(failed)} failed, {skipped} skipped")
    print(f"JUnit: {junit}")
    if not overall_ok(suites):
        raise ChecksFailed(failure or f"{what}: {len(failed)} finding(s); see FAIL lines above and {junit}")
    return 0
