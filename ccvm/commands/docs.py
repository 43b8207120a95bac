"""ccvm docs: dead links, anchors and SUMMARY entries in the book and README."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccvm.checks.docs import CHECKERS, external_links, run_docs
from ccvm.commands.reporting import add_junit_option, add_root_option, report, root_from
from ccvm.report.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "docs",
        help="check the book's and README's links, anchors and SUMMARY entries",
        description="Build the book with mdbook + mdbook-linkcheck2 when both are on PATH; "
        "otherwise check SUMMARY entries, relative links, images and #anchors "
        "with the builtin strict checker.  README.md's links are checked too.  "
        "External links are listed, never followed.",
    )
    add_junit_option(parser, "docs")
    parser.add_argument("--book", type=Path, metavar="DIR", help="the mdBook directory (default: ROOT/docs)")
    parser.add_argument(
        "--checker",
        choices=CHECKERS,
        default="auto",
        help="auto: mdbook when mdbook and mdbook-linkcheck2 are on PATH, else builtin (default: %(default)s)",
    )
    add_root_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = root_from(args)
    suites = run_docs(root, book_dir=args.book, checker=args.checker, progress=Progress(total=0))
    listed = external_links(suites)
    if listed:
        print(f"external links (listed, not followed): {len(listed)}")
        for name in listed:
            print(f"    {name}")
    return report(suites, junit=args.junit, what="docs", first_column="page")
