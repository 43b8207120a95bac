"""ccvm fmt: formatting of shell scripts (shfmt) and Nix files (nixfmt)."""

from __future__ import annotations

import argparse

from ccvm.checks.fmt import FORMATTERS, run_fmt
from ccvm.commands.matrixdir import add_source_tree_options, source_tree
from ccvm.commands.reporting import report
from ccvm.report.progress import Progress
from ccvm.require import requirements_from


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "fmt",
        help="check formatting: shfmt on shell scripts, nixfmt on *.nix",
        description="Check the formatting of every shell script git knows (shfmt, with the options and "
        "file globs of matrix/style.yaml; without options shfmt reads .editorconfig) and Nix file "
        "(nixfmt, from PATH).  A missing formatter's files are reported skipped; under --require TOOL or CI "
        "they fail.  Lines matrix/baseline.yaml knows (the findings at adoption) are reported skipped; a file "
        "fails for new ones only.",
    )
    parser.add_argument("--fix", action="store_true", help="rewrite the files in place instead of checking")
    parser.add_argument(
        "--tool",
        action="append",
        choices=FORMATTERS,
        default=[],
        help="run only this formatter (repeatable; default: all)",
    )
    add_source_tree_options(parser, "fmt", FORMATTERS, "nixfmt")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    tree = source_tree(args)
    progress = Progress(total=bool(tree.files.shell) + bool(tree.files.nix))
    progress.note(f"fmt: {tree.describe_files()}")
    tools = tuple(args.tool) or FORMATTERS
    for tool in tools:
        if tree.style.options_of(tool):
            progress.note(f"fmt: {tool} {' '.join(tree.style.options_of(tool))} (matrix/style.yaml)")
    if tree.baseline.count() and not args.fix:
        progress.note(tree.known_note("fmt"))
    # --require TOOL fails only a missing tool's files; a file skipped because the baseline knows its
    # findings stays skipped.
    requirements = requirements_from(args)
    suites = run_fmt(
        tree.root,
        fix=args.fix,
        progress=progress,
        files=tree.files,
        tools=tools,
        style=tree.style,
        baseline=tree.baseline,
        requirements=requirements,
    )
    return report(suites, junit=args.junit, what="fmt", first_column="formatter")
