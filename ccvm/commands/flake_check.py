"""ccvm flake-check: `nix flake check`, one JUnit case per check."""

from __future__ import annotations

import argparse

from ccvm.checks.nix.flake_check import CheckOptions, run_flake_check
from ccvm.commands.build import add_nix_options, nix_and_progress
from ccvm.commands.common import launcher_matrix_from, positive_float
from ccvm.commands.reporting import add_junit_option, report
from ccvm.require import requirements_from

DEFAULT_TIMEOUT_S = 3600.0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "flake-check",
        help="nix flake check, one JUnit case per check",
        description="Run nix flake check on a flake and report each check it ran; checks of "
        "systems Nix does not build here are reported skipped. Each evaluation warning Nix prints (a deprecated "
        "alias, an unknown flake output, lib.warn) is a failing case, unless matrix/builds.yaml sets "
        "flake_check: {warnings: allow}.",
    )
    parser.add_argument("--flake", default=".", metavar="REF", help="flake reference (default: %(default)s)")
    add_junit_option(parser, "flake-check")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help="seconds for the whole nix flake check (default: %(default)s)",
    )
    add_nix_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The project's matrix where there is one (builds.yaml's flake_check rules); outside a project, the defaults.
    builds = launcher_matrix_from(args).builds
    options = CheckOptions(
        flake=args.flake,
        timeout_s=args.timeout,
        requirements=requirements_from(args),
        egress_check=args.egress_check,
        connect_timeout_s=args.connect_timeout,
        warnings_fail=builds.flake_check_warnings == "fail",
    )
    nix, progress = nix_and_progress(args, 1)
    suites = run_flake_check(nix, options, progress)
    return report(
        suites,
        junit=args.junit,
        what="flake-check",
        first_column="check",
        failure="nix flake check failed; see the table above and the JUnit report",
    )
