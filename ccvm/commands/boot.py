"""ccvm boot: the boot smoke matrix."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccvm.checks.boot.executor import run_boot
from ccvm.checks.boot.job import BOOT_NEEDS, BootOptions
from ccvm.commands.common import (
    add_asset_options,
    add_reprobe_option,
    asset_store,
    core_count,
    matrix_from,
    non_negative_int,
    positive_float,
    positive_int,
)
from ccvm.commands.reporting import add_junit_option, end
from ccvm.errors import ChecksFailed, UsageError, WatchdogExpired
from ccvm.files import make_dirs
from ccvm.launcher.resolve import check_launcher, project_root, undeclared, under_test
from ccvm.matrix.axes import Accel
from ccvm.matrix.sizes import parse_mib
from ccvm.processes import default_jobs
from ccvm.qemu.probe import qemu_info
from ccvm.report.progress import Progress
from ccvm.report.results import overall_ok
from ccvm.report.table import table
from ccvm.require import add_require_options, requirements_from


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "boot",
        help="boot the stub guest on every runnable cell",
        description="Boot the stub guest on the selected cells (default: all) and assert "
        "argv, share visibility and exit status on each; through the launcher declared in "
        "matrix/launcher.yaml, its declared scenarios, when there is one.",
    )
    parser.add_argument("--cell", action="append", default=[], metavar="ID", help="run only this cell (repeatable)")
    add_junit_option(parser, "boot")
    parser.add_argument(
        "--reports",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="console logs go under DIR/boot (default: %(default)s)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=default_jobs(),
        metavar="N",
        help="host cores the guests' vCPUs may use at once; boots wait for free cores (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=positive_float, metavar="S", help="seconds per boot attempt (default: matrix)"
    )
    parser.add_argument(
        "--retries", type=non_negative_int, metavar="N", help="extra attempts per cell (default: matrix)"
    )
    parser.add_argument(
        "--run-timeout", type=positive_float, metavar="S", help="whole-run watchdog (default: computed)"
    )
    add_require_options(parser, BOOT_NEEDS, "kvm")
    parser.add_argument(
        "--require-accel",
        action="append",
        default=[],
        choices=[a.value for a in Accel],
        metavar="ACCEL",
        help="the older spelling of --require ACCEL",
    )
    parser.add_argument("--memory", metavar="SIZE", help="guest memory, e.g. 512M (default: matrix)")
    parser.add_argument("--cores", type=core_count, metavar="N", help="guest vCPUs, 1 to 512 (default: matrix)")
    add_reprobe_option(parser)
    add_asset_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    matrix = matrix_from(args)
    launcher, root = under_test(matrix), project_root(matrix)
    missing = undeclared(matrix)  # no cell boots ccvm's embedded launcher in its stead
    check_launcher(launcher, root)
    try:
        cells = tuple(matrix.cell(cell_id) for cell_id in dict.fromkeys(args.cell)) if args.cell else matrix.cells
    except KeyError as exc:
        raise UsageError(f"--cell: {exc.args[0]}") from None
    try:
        memory = parse_mib(args.memory) if args.memory else None
    except ValueError as exc:
        raise UsageError(f"--memory: {exc}") from None
    options = BootOptions(
        cells=cells,
        jobs=args.jobs,
        reports=args.reports,
        timeout_s=args.timeout,
        retries=args.retries,
        requirements=requirements_from(args, also_required=args.require_accel),
        run_timeout_s=args.run_timeout,
        memory_mib=memory,
        cores=args.cores,
        reprobe=args.reprobe,
        undeclared=missing,
    )
    try:
        make_dirs(args.reports / "boot")
    except OSError as exc:
        raise UsageError(f"--reports {args.reports}: cannot write there ({exc.strerror})") from None
    progress = Progress(total=len(cells))
    store = asset_store(args, matrix, notify=progress.note)
    for arch in sorted({c.arch for c in cells if qemu_info(c.arch).path and launcher.uses_ccvm_guest and not missing}):
        progress.note(f"guest assets for {arch}: preparing (cached after the first run)")
        assets = store.for_arch(arch)
        for note in assets.notes:
            progress.note(f"guest assets for {arch}: {note}")
    result = run_boot(launcher, root, options, store, progress, build_timeout_s=matrix.builds.timeout_s)
    failure = None
    if result.watchdog_expired:
        failure = WatchdogExpired("the whole-run watchdog expired; unfinished cells are reported failed")
    elif not overall_ok(result.suites):
        failure = ChecksFailed("some boot cells failed; see the table above and the console logs")
    lines = ["", table(result.suites, first_column="cell", prefix="boot."), f"\nJUnit: {args.junit}"]
    return end(result.suites, junit=args.junit, lines=lines, failure=failure, stopped=result.interrupted)
