"""ccvm lint: shellcheck on shell scripts, ruff on Python."""

from __future__ import annotations

import argparse

from ccvm.checks.lint import LINT_PROGRAMS, lint_suite_count, run_lint
from ccvm.commands.matrixdir import add_source_tree_options, source_tree
from ccvm.commands.reporting import report
from ccvm.report.progress import Progress
from ccvm.require import requirements_from


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
    add_source_tree_options(parser, "lint", LINT_PROGRAMS, "shellcheck")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    tree = source_tree(args)
    progress = Progress(total=lint_suite_count(tree.files, tree.style))
    progress.note(f"lint: {tree.describe_files()}")
    if tree.baseline.count():
        progress.note(tree.known_note("lint"))
    suites = run_lint(
        tree.root,
        progress=progress,
        files=tree.files,
        style=tree.style,
        baseline=tree.baseline,
        requirements=requirements_from(args),
    )
    return report(suites, junit=args.junit, what="lint", first_column="linter")
