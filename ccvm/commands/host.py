"""ccvm host: the launcher's contract, checked on the host without a VM."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ccvm.checks.host.scripts import DEFAULT_SCRIPT_TIMEOUT_S
from ccvm.checks.host.suite import HostRun, run_host_suite
from ccvm.commands.common import positive_float
from ccvm.commands.reporting import add_junit_option, end
from ccvm.errors import ChecksFailed, UsageError
from ccvm.launcher.build import LauncherBuilds
from ccvm.launcher.embedded import EMBEDDED
from ccvm.launcher.resolve import LAUNCHER, given_wrapper, undeclared
from ccvm.matrix.axes import host_arch
from ccvm.matrix.builds import DEFAULT_TIMEOUT_S as BUILD_TIMEOUT_S
from ccvm.matrix.launcher import Launcher, load_launcher
from ccvm.matrix.model import load_matrix, matrix_root
from ccvm.processes import executable_at
from ccvm.report.results import Case, Outcome, Suite, overall_ok
from ccvm.report.table import table
from ccvm.require import Requirements, add_require_options, requirements_from

NONE = "none"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "host",
        help="run the host dry-run suite against the launcher (no VM)",
        description="Check the launcher's contract through its dry-run hook: secret hygiene, "
        "config staging, verbatim argv, mode selection; and run the project's own host test scripts.",
    )
    parser.add_argument(
        "--wrapper",
        metavar="PATH",
        help="the launcher to check instead of the declared one (matrix/launcher.yaml) or ccvm vm",
    )
    parser.add_argument(
        "--build",
        action="store_true",
        help="first run the declared launcher's build step for this host's system (matrix/launcher.yaml "
        "build:) and check what it built; without it argv is used as it is (build it yourself)",
    )
    add_junit_option(parser, "host")
    parser.add_argument(
        "--script",
        action="append",
        default=[],
        metavar="PATH",
        help="a project test script to run, with $CCVM naming the launcher; repeatable; "
        "default: the declaration's host_scripts, or tests/host.sh for ccvm vm; 'none' for none",
    )
    parser.add_argument(
        "--timeout", type=positive_float, metavar="S", help="seconds one dry run may take (default: declared, or 120)"
    )
    parser.add_argument(
        "--script-timeout",
        type=positive_float,
        default=DEFAULT_SCRIPT_TIMEOUT_S,
        metavar="S",
        help="seconds one test script may take (default: %(default)g)",
    )
    add_require_options(parser, (LAUNCHER,), LAUNCHER)
    parser.set_defaults(func=run)


def _executable(raw: str) -> str:
    found = executable_at(raw, Path.cwd())
    if found is None:
        raise UsageError(f"--wrapper {raw}: not an executable file")
    return found


def _declared(matrix_dir: Path) -> Launcher | None:
    return load_launcher(matrix_dir) if matrix_dir.is_dir() else None


def _launcher(args: argparse.Namespace, matrix_dir: Path) -> tuple[Launcher, str]:
    """The launcher under test, and why it is not the project's (``undeclared``: nothing is then run)."""
    declared = _declared(matrix_dir)
    if args.wrapper is not None:
        path = _executable(args.wrapper)
        return (declared.with_argv((path,)) if declared else given_wrapper(path)), ""
    if declared is not None:
        return declared, ""
    matrix = load_matrix(matrix_dir)  # ccvm vm reads the matrix; check it loads before the suite drives it
    return EMBEDDED, undeclared(matrix)


def _not_run(reason: str, requirements: Requirements) -> list[Suite]:
    """The suite when the project's launcher is not declared: skipped with the reason, failed where required."""
    outcome, message = requirements.outcome(LAUNCHER), requirements.message(reason, LAUNCHER)
    return [Suite(name="host.launcher", cases=[Case(name="declared", outcome=outcome, message=message)])]


def _project_root(matrix_dir: Path) -> Path:
    return matrix_dir.resolve().parent if matrix_dir.is_dir() else Path.cwd()


def _scripts(args: argparse.Namespace, launcher: Launcher, root: Path) -> tuple[Path, ...]:
    if args.script == [NONE]:
        return ()
    if args.script:
        paths = []
        for raw in args.script:
            path = Path(raw).resolve()
            if not path.is_file():
                raise UsageError(f"--script {raw}: no such file (run from the project root, or --script none)")
            paths.append(path)
        return tuple(paths)
    paths = tuple((root / name).resolve() for name in launcher.host_scripts)
    if not launcher.declared:  # ccvm's own convention, tests/host.sh, where there is one
        return tuple(path for path in paths if path.is_file())
    for name, path in zip(launcher.host_scripts, paths, strict=True):
        if not path.is_file():
            raise UsageError(
                f"{launcher.source}: host script {name} not found under {root}; fix host_scripts or pass --script none"
            )
    return paths


def _print_results(suites) -> None:
    for suite in suites:
        counts = {outcome: sum(c.outcome is outcome for c in suite.cases) for outcome in Outcome}
        skipped = f", {counts[Outcome.SKIP]} skipped" if counts[Outcome.SKIP] else ""
        print(f"{suite.name}: {counts[Outcome.PASS]} passed, {counts[Outcome.FAIL]} failed{skipped}")
        for case in suite.cases:
            if case.outcome is Outcome.FAIL:
                print(f"    FAIL {case.name}: {case.message}")
                for line in case.details.splitlines():  # a script's last lines: its reason, on screen too
                    print(f"        {line}")


def _failure_summary(suites) -> str:
    failed = [suite for suite in suites if suite.outcome is Outcome.FAIL]
    scripts = [suite for suite in failed if suite.name.startswith("host.script.")]
    if len(scripts) == len(failed):
        return "the project's host scripts failed; see the failures above"
    if scripts:
        return "the launcher broke its contract and the project's host scripts failed; see the failures above"
    return "the launcher broke its contract; see the failures above"


def _built(launcher: Launcher, root: Path, matrix_dir: Path) -> Launcher:
    """The declared launcher after its build step for this host's system (--build)."""
    arch = host_arch()
    system = arch.nix_system if arch else ""
    if launcher.embedded or not launcher.build:
        raise UsageError("--build: the launcher under test declares no build step (matrix/launcher.yaml build:)")
    if launcher.build_for(system) is None:
        raise UsageError(f"--build: {launcher.source} declares no build step for this host's system {system}")
    # builds.yaml's timeout where the project has a whole matrix, else its default
    timeout_s = load_matrix(matrix_dir).builds.timeout_s if (matrix_dir / "builds.yaml").is_file() else BUILD_TIMEOUT_S
    builds = LauncherBuilds(launcher, root, timeout_s=timeout_s, log_dir=Path("reports") / "host")
    built = builds.for_system(system)
    if built.problem:
        raise ChecksFailed(f"--build: {built.problem}")
    return launcher.with_argv(built.argv)


def run(args: argparse.Namespace) -> int:
    matrix_dir = matrix_root(args.matrix)
    launcher, missing = _launcher(args, matrix_dir)
    root = _project_root(matrix_dir)
    if missing:
        suites = _not_run(missing, requirements_from(args))
        failure = (
            None
            if overall_ok(suites)
            else ChecksFailed("the project's launcher is required here, and none is declared; see above")
        )
        return end(
            suites, junit=args.junit, lines=[f"ccvm host: {suites[0].reason}", f"JUnit: {args.junit}"], failure=failure
        )
    if args.build:
        launcher = _built(launcher, root, matrix_dir)
    plan = HostRun(
        launcher=launcher,
        project_root=root,
        matrix=matrix_dir.resolve() if matrix_dir.is_dir() else None,
        scripts=_scripts(args, launcher, root),
        dry_run_timeout_s=args.timeout,
        script_timeout_s=args.script_timeout,
    )
    started = time.monotonic()
    suites = run_host_suite(plan)
    _print_results(suites)
    failure = None if overall_ok(suites) else ChecksFailed(_failure_summary(suites))
    lines = [
        "",
        table(suites, first_column="group"),
        f"\nhost suite ({launcher.name}): {time.monotonic() - started:.1f}s; JUnit: {args.junit}",
    ]
    return end(suites, junit=args.junit, lines=lines, failure=failure)
