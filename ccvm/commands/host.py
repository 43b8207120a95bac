"""ccvm host: the launcher's contract, checked on the host without a VM."""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from ccvm.checks.host import default_wrapper, run_host_suite
from ccvm.commands.common import matrix_from
from ccvm.commands.reporting import add_junit_option, end
from ccvm.errors import ChecksFailed, UsageError
from ccvm.report.results import Outcome, overall_ok
from ccvm.report.table import table

HOST_SCRIPT = Path("tests/host.sh")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "host",
        help="run the host dry-run suite against the launcher (no VM)",
        description="Check the launcher's contract through CCVM_DRYRUN=1: secret hygiene, "
        "config staging, verbatim argv, mode selection.",
    )
    parser.add_argument(
        "--wrapper",
        metavar="PATH",
        help="an executable honouring CCVM_DRYRUN with the same plan schema (default: ccvm vm)",
    )
    add_junit_option(parser, "host")
    parser.add_argument(
        "--script",
        type=Path,
        default=HOST_SCRIPT,
        metavar="PATH",
        help="the plain shell test to run too (default: %(default)s; 'none' to skip)",
    )
    parser.set_defaults(func=run)


def _wrapper(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return default_wrapper()
    found = shutil.which(raw) if os.sep not in raw else raw
    if not found or not os.access(found, os.X_OK):
        raise UsageError(f"--wrapper {raw}: not an executable file")
    return (str(Path(found).resolve()),)


def run(args: argparse.Namespace) -> int:
    matrix = matrix_from(args)
    script = None if str(args.script) == "none" else args.script.resolve()
    if script is not None and not script.is_file():
        raise UsageError(f"--script {args.script}: no such file (run from the project root, or --script none)")
    started = time.monotonic()
    suites = run_host_suite(wrapper=_wrapper(args.wrapper), matrix=matrix.root.resolve(), script=script)
    for suite in suites:
        failed = sum(case.outcome is Outcome.FAIL for case in suite.cases)
        suite.properties["seconds"] = f"{sum(c.seconds for c in suite.cases):.1f}"
        print(f"{suite.name}: {len(suite.cases) - failed} passed, {failed} failed")
        for case in suite.cases:
            if case.outcome is Outcome.FAIL:
                print(f"    FAIL {case.name}: {case.message}")
    failure = None if overall_ok(suites) else ChecksFailed("the launcher broke its contract; see the failures above")
    lines = [
        "",
        table(suites, first_column="group"),
        f"\nhost suite: {time.monotonic() - started:.1f}s; JUnit: {args.junit}",
    ]
    return end(suites, junit=args.junit, lines=lines, failure=failure)
