"""ccvm attest: record a person's check of what cannot be automated, and
(``--auto``) run the machine's part of it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccvm.checks.tty.run import TtyOptions, run_tty
from ccvm.ci import attest, gitchange
from ccvm.commands.common import add_asset_options, add_reprobe_option, asset_store, matrix_from, positive_float
from ccvm.commands.reporting import add_junit_option, end
from ccvm.errors import ChecksFailed, ConfigError, UsageError
from ccvm.launcher.boot import runner_for
from ccvm.launcher.resolve import project_root, under_test
from ccvm.qemu.probe import KvmProbe
from ccvm.report.progress import Progress
from ccvm.report.results import Outcome, overall_ok
from ccvm.report.table import table


def register(sub: argparse._SubParsersAction) -> None:
    steps = "; ".join(f"{kind}: {what}" for kind, what in attest.KINDS.items())
    parser = sub.add_parser(
        "attest",
        help="record that you checked by hand what the gate cannot automate (--auto: run the machine's part)",
        description="Record an attestation for the working tree exactly as it is now (uncommitted and untracked "
        "files included): who (git config user.name/user.email), when, your note and the tree's hash. "
        "It is kept under the git directory, never committed, and goes stale when the tree changes. "
        f"Before attesting -- {steps}. "
        "With --auto, run the machine's part instead: each tty scenario of the launcher under test under a "
        "pseudo-terminal, on each cell, each step a JUnit case; its result is recorded for the tree and the "
        "gate shows it beside the person's attestation (it does not replace it).",
    )
    parser.add_argument("kind", choices=sorted(attest.KINDS), help="what you checked")
    parser.add_argument("--note", help="what you did and saw, in a sentence (required without --auto)")
    parser.add_argument("--auto", action="store_true", help="run the automated terminal check and record it")
    parser.add_argument(
        "--cell", action="append", default=[], metavar="ID", help="--auto: only this cell (repeatable; default: all)"
    )
    parser.add_argument(
        "--reports",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="--auto: terminal logs go under DIR/tty (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=positive_float, metavar="S", help="--auto: seconds per boot (default: matrix)"
    )
    add_junit_option(parser, "tty")
    add_reprobe_option(parser)
    add_asset_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.auto:
        return run_auto(args)
    if args.note is None:
        raise UsageError("ccvm attest: --note is required: say what you checked (or run the machine's part: --auto)")
    root = gitchange.repo_root()
    attestation, path = attest.record(root, args.kind, args.note)
    print(
        f"recorded {args.kind} attestation by {attestation.name} <{attestation.email}> "
        f"for tree {attestation.tree[:12]}: {path}"
    )
    print("it goes stale as soon as the tree changes; attest again after further edits")
    return 0


def run_auto(args: argparse.Namespace) -> int:
    if args.note is not None:
        raise UsageError("ccvm attest --auto takes no --note: the machine's result is recorded, not a person's word")
    matrix = matrix_from(args)
    launcher, root = under_test(matrix), project_root(matrix)
    if not launcher.tty:
        raise ConfigError(
            launcher.source or "launcher.yaml",
            None,
            "declares no tty scenarios; add `tty: {scenarios: [...]}` "
            "(docs: terminal.md, Terminal scenarios for your launcher)",
        )
    try:
        cells = tuple(matrix.cell(cell_id) for cell_id in dict.fromkeys(args.cell)) if args.cell else matrix.cells
    except KeyError as exc:
        raise UsageError(f"--cell: {exc.args[0]}") from None
    try:
        (args.reports / "tty").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--reports {args.reports}: cannot write there ({exc.strerror})") from None
    repo = gitchange.repo_root()  # before booting anything: the result is recorded for this tree
    progress = Progress(total=len(cells) * len(launcher.tty))
    store = asset_store(args, matrix, notify=progress.note)
    runner = runner_for(
        launcher,
        root=root,
        store=store,
        build_timeout_s=matrix.builds.timeout_s,
        log_dir=args.reports / "tty",
        matrix_root=matrix.root.resolve(),
    )
    probe = KvmProbe(store.for_arch, log_root=args.reports / "tty", reprobe=args.reprobe)
    options = TtyOptions(cells=cells, reports=args.reports, timeout_s=args.timeout)

    def finished(suite) -> None:
        progress.finished(suite, suite.wall_seconds)

    suites = run_tty(launcher, runner, probe, options, on_suite=finished)
    ran = tuple(dict.fromkeys(s.name.split(".")[1] for s in suites if s.outcome is not Outcome.SKIP))
    failed = tuple(f"{s.name} {c.name}" for s in suites for c in s.cases if c.outcome is Outcome.FAIL)
    passed = overall_ok(suites) and bool(ran)
    recorded, path = attest.record_automated(
        repo, args.kind, passed=passed, cells=ran, cases=sum(len(s.cases) for s in suites), failed=failed
    )
    lines = [
        "",
        table(suites, first_column="session", prefix="tty."),
        f"\n{recorded.summary()}; recorded for tree {recorded.tree[:12]}: {path}",
        "a person still judges what a machine cannot: see docs, Terminal fidelity",
        f"JUnit: {args.junit}",
    ]
    failure = None
    if not passed:
        failure = ChecksFailed("the terminal check failed" if ran else "the terminal check ran on no cell")
    return end(suites, junit=args.junit, lines=lines, failure=failure)
