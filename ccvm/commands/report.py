"""ccvm report: merge JUnit files and write a Markdown summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccvm.errors import ChecksFailed
from ccvm.report.markdown import Reproduce, junit_files, markdown, write_report


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="merge JUnit files into one and write a Markdown summary")
    parser.add_argument(
        "--junit-dir",
        type=Path,
        default=Path("reports/junit"),
        metavar="DIR",
        help="read every *.xml below DIR (default: %(default)s)",
    )
    parser.add_argument(
        "--junit",
        type=Path,
        default=Path("reports/all.xml"),
        metavar="PATH",
        help="the merged JUnit file (default: %(default)s)",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        metavar="PATH",
        help="append the Markdown summary here (e.g. $GITHUB_STEP_SUMMARY); default: print it",
    )
    parser.add_argument(
        "--reproduce",
        choices=[str(style) for style in Reproduce],
        default=str(Reproduce.CCVM),
        help="how the summary says to reproduce a failed suite: ccvm commands (ccvm boot --cell CELL; the default), "
        "or ccvm's own repository's nox sessions (bash .ci/setup && .venv/bin/nox -s boot -- --cell CELL); "
        "ccvm generate writes the one that exists in the repository into its workflows",
    )
    parser.add_argument("--fail-on-failure", action="store_true", help="exit 1 when any merged testcase failed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files = [p for p in junit_files(args.junit_dir) if p.resolve() != args.junit.resolve()]
    reproduce = Reproduce(args.reproduce)
    summaries = write_report(files, args.junit, args.summary, reproduce)
    if args.summary is None:
        print(markdown(summaries, reproduce), end="")
    print(f"merged {len(files)} JUnit file(s), {len(summaries)} suite(s) into {args.junit}")
    if args.fail_on_failure and any(s.failures for s in summaries):
        raise ChecksFailed("some merged testcases failed")
    return 0
