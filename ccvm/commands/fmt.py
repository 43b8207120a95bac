"""ccvm fmt: formatting of shell scripts (shfmt) and Nix files (nixfmt).

Also home of ``report``, the ending the static checks share (fmt, lint,
docs): findings, the table, JUnit and the exit status."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ccvm.errors import ChecksFailed, UsageError
from ccvm.fmt import run_fmt
from ccvm.junit import write_junit
from ccvm.progress import Progress, table
from ccvm.results import Outcome, Suite, overall_ok
from ccvm.sourcefiles import SourceFiles, discover

DETAILS_MAX_LINES = 60  # per failed case on the terminal; JUnit keeps all of it


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


def describe_files(files: SourceFiles) -> str:
    how = "tracked by git" if files.from_git else "found by walking the tree (not a git work tree)"
    return f"{len(files.shell)} shell, {len(files.python)} Python, {len(files.nix)} Nix file(s), {how}"


def _print_failure(case_message: str, details: str) -> None:
    print(f"FAIL {case_message}")
    lines = details.rstrip().splitlines()
    for line in lines[:DETAILS_MAX_LINES]:
        print(f"    {line}")
    if len(lines) > DETAILS_MAX_LINES:
        print(f"    ... {len(lines) - DETAILS_MAX_LINES} more lines in the JUnit file")


def report(suites: list[Suite], *, junit: Path, what: str, first_column: str = "check") -> int:
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
        raise ChecksFailed(f"{what}: {len(failed)} finding(s); see FAIL lines above and {junit}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "fmt",
        help="check formatting: shfmt on shell scripts, nixfmt on *.nix",
        description="Check the formatting of every tracked shell script (shfmt, settings from "
        ".editorconfig) and Nix file (nixfmt; skipped when nixfmt is not on PATH).",
    )
    parser.add_argument("--fix", action="store_true", help="rewrite the files in place instead of checking")
    parser.add_argument(
        "--junit",
        type=Path,
        default=Path("reports/junit/fmt.xml"),
        metavar="PATH",
        help="JUnit XML output (default: %(default)s)",
    )
    add_root_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = root_from(args)
    files = discover(root)
    progress = Progress(total=bool(files.shell) + bool(files.nix))
    progress.note(f"fmt: {describe_files(files)}")
    suites = run_fmt(root, fix=args.fix, progress=progress, files=files)
    return report(suites, junit=args.junit, what="fmt", first_column="formatter")
