"""ccvm lint: shellcheck on shell scripts, ruff on Python."""

from __future__ import annotations

import argparse

from ccvm.checks.lint import LINT_PROGRAMS, lint_suite_count, run_lint
from ccvm.checks.sourcefiles import discover
from ccvm.commands.fmt import describe_files
from ccvm.commands.matrixdir import baseline_for, style_for
from ccvm.commands.reporting import add_junit_option, add_root_option, report, root_from
from ccvm.report.progress import Progress
from ccvm.require import add_require_options, requirements_from


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "lint",
        help="lint: shellcheck on shell scripts, ruff check and format on Python",
        description="Run shellcheck on every tracked shell script (the files, options and severity of "
        "matrix/style.yaml; shellcheck reads the project's .shellcheckrc) and ruff (rules, and the "
        "formatter in check mode, under the project's own ruff configuration and its excludes) on every "
        "tracked Python file.  A missing linter's files are reported skipped; under --require TOOL or CI they "
        "fail.  Findings matrix/baseline.yaml knows (those at adoption) are reported skipped; a file fails for "
        "new ones only.",
    )
    add_require_options(parser, LINT_PROGRAMS, "shellcheck")
    add_junit_option(parser, "lint")
    add_root_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = root_from(args)
    files = discover(root)
    style = style_for(args, root)
    baseline = baseline_for(args, root)
    progress = Progress(total=lint_suite_count(files, style))
    progress.note(f"lint: {describe_files(files)}")
    if baseline.count():
        progress.note(f"lint: {baseline.count()} finding(s) known from matrix/baseline.yaml; new ones fail")
    suites = run_lint(
        root, progress=progress, files=files, style=style, baseline=baseline, requirements=requirements_from(args)
    )
    return report(suites, junit=args.junit, what="lint", first_column="linter")
