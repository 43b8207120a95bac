"""ccvm build: `nix build` of every declared flake attribute per system."""

from __future__ import annotations

import argparse
import re

from ccvm.checks.nix.build import BuildOptions, run_builds
from ccvm.checks.nix.egress import CONNECT_TIMEOUT_S
from ccvm.checks.nix.preflight import require_usable
from ccvm.commands.common import matrix_from, positive_float
from ccvm.commands.reporting import add_junit_option, report
from ccvm.errors import UsageError
from ccvm.matrix.axes import host_arch
from ccvm.matrix.builds import SYSTEMS, Builds, BuildTarget
from ccvm.nixtool import NIX, Nix, find_nix, version_lines
from ccvm.report.progress import Progress
from ccvm.require import add_require_options, requirements_from

_SYSTEM = re.compile(r"^[A-Za-z0-9_]+-[A-Za-z0-9_]+$")


def add_nix_options(parser: argparse.ArgumentParser) -> None:
    """Options `ccvm build` and `ccvm flake-check` share."""
    group = parser.add_argument_group("nix", "nix runs with the user's configuration (nix.conf, NIX_CONFIG) plus these")
    group.add_argument(
        "--nix-option",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="pass --option NAME VALUE to every nix call (repeatable)",
    )
    add_require_options(group, [NIX], NIX)
    group.add_argument(
        "--no-egress-check",
        dest="egress_check",
        action="store_false",
        help="skip the preflight that tries the hosts of pending downloads",
    )
    group.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=CONNECT_TIMEOUT_S,
        metavar="S",
        help="TCP connect timeout of the egress preflight (default: %(default)ss)",
    )


def nix_from(args: argparse.Namespace) -> Nix | None:
    """The nix to use, after the preflight (a broken set-up is a HostError); None when there is none."""
    nix = find_nix(tuple((name, value) for name, value in args.nix_option))
    if nix is not None:
        require_usable(nix)
    return nix


def nix_and_progress(args: argparse.Namespace, total: int) -> tuple[Nix | None, Progress]:
    """The nix to use (nix_from), and the progress of a run of ``total`` suites, which first says which Nix."""
    nix = nix_from(args)
    progress = Progress(total=total)
    for line in version_lines(nix):
        progress.note(line)
    return nix, progress


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "build",
        help="nix build every declared flake attribute on every buildable system",
        description="Build the targets of matrix/builds.yaml (or those named) with nix build; "
        "systems this host cannot build are reported skipped.",
    )
    parser.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="A",
        help="build only this attribute of packages.<system> (repeatable)",
    )
    parser.add_argument(
        "--system",
        action="append",
        default=[],
        metavar="S",
        help=f"build only for this Nix system (repeatable; 'host' for this host's; known: {', '.join(SYSTEMS)})",
    )
    parser.add_argument("--flake", metavar="REF", help="flake reference (default: matrix/builds.yaml, '.')")
    add_junit_option(parser, "build")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        metavar="S",
        help="seconds for one target's nix build (default: matrix/builds.yaml)",
    )
    add_nix_options(parser)
    parser.set_defaults(func=run)


def _host_system() -> str:
    arch = host_arch()
    if arch is None:
        raise UsageError("--system host: this host's architecture is not a Nix system ccvm knows")
    return arch.nix_system


def select_targets(builds: Builds, attrs: list[str], systems: list[str]) -> tuple[BuildTarget, ...]:
    """Declared targets, narrowed by --attr and --system.  An attribute not
    declared in builds.yaml is built for the given systems (or all known)."""
    for system in systems:
        if not _SYSTEM.match(system):
            raise UsageError(f"--system {system!r}: write a Nix system such as {SYSTEMS[0]}")
    targets = list(builds.targets)
    if attrs:
        declared = {t.attr for t in targets}
        targets = [t for t in targets if t.attr in attrs]
        targets += [BuildTarget(attr=a, system=s) for a in attrs if a not in declared for s in systems or SYSTEMS]
    if systems:
        targets = [t for t in targets if t.system in systems]
    if not targets:
        raise UsageError("no build target matches the --attr/--system given; see matrix/builds.yaml")
    return tuple(dict.fromkeys(targets))


def run(args: argparse.Namespace) -> int:
    builds = matrix_from(args).builds
    options = BuildOptions(
        flake=args.flake or builds.flake,
        targets=select_targets(builds, args.attr, [_host_system() if s == "host" else s for s in args.system]),
        timeout_s=args.timeout or builds.timeout_s,
        requirements=requirements_from(args),
        egress_check=args.egress_check,
        connect_timeout_s=args.connect_timeout,
    )
    nix, progress = nix_and_progress(args, len(options.targets))
    suites = run_builds(nix, options, progress)
    return report(
        suites,
        junit=args.junit,
        what="build",
        first_column="target",
        failure="some builds failed; see the table above and the JUnit report",
    )
