"""ccvm gate: run every check the change requires (matrix/gate.yaml), or
plan them, or install the git pre-push hook that runs the gate."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from ccvm.ci import attest, gate, gitchange
from ccvm.commands.common import positive_int
from ccvm.commands.reporting import end
from ccvm.errors import ChecksFailed, UsageError
from ccvm.files import make_dirs
from ccvm.git import git
from ccvm.matrix.model import load_matrix, matrix_root
from ccvm.processes import default_jobs
from ccvm.report.progress import Progress

HOOK_MARKER = "# ccvm-gate-hook"
DEFAULT_JUNIT = Path("reports/junit/gate.xml")
DEFAULT_REPORTS = Path("reports")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "gate",
        help="run the checks this change requires before merge (matrix/gate.yaml)",
        description="Compare the working tree (committed or not, untracked files included) with its merge base "
        "with the main branch, and run every check matrix/gate.yaml requires for the changed paths. "
        "Exit 0 only when every requirement passed; skipped is not passed.",
    )
    parser.add_argument(
        "--base",
        metavar="REF",
        help="the main branch (default: base: in gate.yaml, else main; falls back to origin/REF)",
    )
    parser.add_argument("--plan", action="store_true", help="print the required checklist; run nothing")
    parser.add_argument("--json", action="store_true", help="with --plan: machine-readable output")
    # Both default under the repository root, wherever ccvm runs: a reports/ made in a subdirectory would
    # change the work tree, and with it the tree a tty attestation is for.
    parser.add_argument(
        "--junit",
        type=Path,
        metavar="PATH",
        help=f"JUnit XML output (default: {DEFAULT_JUNIT} in the repository root)",
    )
    parser.add_argument(
        "--reports",
        type=Path,
        metavar="DIR",
        help=f"each check's output goes to DIR/gate/NAME.log (default: {DEFAULT_REPORTS} in the repository root)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=default_jobs(),
        metavar="N",
        help="checks run at once (default: cores, %(default)s)",
    )
    parser.add_argument("--install-hook", action="store_true", help="install a git pre-push hook that runs the gate")
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --install-hook: replace a different hook (kept as pre-push.before-ccvm)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.json and not args.plan:
        raise UsageError("--json goes with --plan; a run's results are in the JUnit file (--junit)")
    if args.force and not args.install_hook:
        raise UsageError("--force goes with --install-hook")
    root = gitchange.repo_root()
    if args.install_hook:
        return install_hook(root, force=args.force)
    matrix_dir = matrix_root(args.matrix, base=root)  # --matrix, $CCVM_MATRIX, the repository's matrix/
    rules = load_matrix(matrix_dir).gate
    plan = gate.plan_for_repo(root, rules, args.base)
    if args.plan:
        return _print_plan(root, plan, as_json=args.json)
    args.junit = args.junit or root / DEFAULT_JUNIT
    args.reports = args.reports or root / DEFAULT_REPORTS
    return _run(root, matrix_dir, plan, args)


def _writable_outputs(junit: Path, log_dir: Path) -> None:
    """Refuse unwritable output paths before any check runs, not after the last one."""
    if junit.is_dir():
        raise UsageError(f"--junit {junit}: cannot write the JUnit file: Is a directory")
    try:
        make_dirs(log_dir)
    except OSError as exc:
        raise UsageError(f"--reports {log_dir.parent}: cannot make {log_dir}: {exc.strerror or exc}") from None


def _print_plan(root: Path, plan: gate.Plan, *, as_json: bool) -> int:
    attested = attest.current(root, "tty", plan.tree) if any(r.check is None for r in plan.requirements) else None
    if as_json:
        print(json.dumps(gate.plan_json(plan, attested), indent=2))
    else:
        print("\n".join(gate.plan_lines(plan, attested)))
    return 0


def _progress_line(progress: Progress, result: gate.Result) -> None:
    if result.requirement.check is None:
        progress.note(f"{result.requirement.name}: {result.status}")
    else:
        progress.finished(gate.to_suites([result], prefix="")[0], result.seconds)


def _run(root: Path, matrix_dir: Path, plan: gate.Plan, args: argparse.Namespace) -> int:
    print(gate.change_line(plan), flush=True)
    if not plan.requirements:
        print("nothing required: gate passed")
        return end([], junit=args.junit)
    log_dir = args.reports / "gate"
    _writable_outputs(args.junit, log_dir)
    names = [r.name for r in plan.requirements if r.check]
    progress = Progress(total=len(names))
    progress.note(f"requires: {', '.join(r.name for r in plan.requirements)}")
    if names:
        progress.note(f"running {len(names)} check(s), up to {args.jobs} at a time")
    options = gate.RunOptions(root=root, matrix_root=matrix_dir, log_dir=log_dir, jobs=args.jobs)
    results = gate.run_plan(plan, options, lambda result: _progress_line(progress, result))
    return _end(results, args.junit)


def _end(results: list[gate.Result], junit: Path) -> int:
    lines = ["", gate.checklist(results), f"\nJUnit: {junit}"]
    if gate.passed(results):
        return end(
            gate.to_suites(results), junit=junit, lines=[*lines, f"gate: passed ({len(results)} requirement(s))"]
        )
    lines += ["\nTo reproduce what did not pass:", "\n".join(gate.reproduce_lines(results))]
    failing = sum(1 for r in results if r.status is not gate.Status.PASS)
    failure = ChecksFailed(f"gate: {failing} of {len(results)} requirement(s) did not pass; see the checklist above")
    return end(gate.to_suites(results), junit=junit, lines=lines, failure=failure)


# --- the pre-push hook -------------------------------------------------------------------------------------------


def hook_path(root: Path) -> Path:
    configured = git(root, "config", "--get", "core.hooksPath").stdout.strip()
    if configured:
        hooks = Path(os.path.expanduser(configured))
        return (hooks if hooks.is_absolute() else root / hooks) / "pre-push"
    return gitchange.git_path(root, "hooks/pre-push")


def hook_text() -> str:
    return (
        "#!/bin/sh\n"
        f"{HOOK_MARKER}: installed by `ccvm gate --install-hook`; delete this file to push without the gate.\n"
        "# Git exports the repository's location to hooks; checks that make repositories of their own must not\n"
        "# inherit it.  The hook runs in the top of the work tree.\n"
        "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX GIT_COMMON_DIR GIT_OBJECT_DIRECTORY\n"
        f"exec {shlex.quote(sys.executable)} -m ccvm gate\n"
    )


def install_hook(root: Path, *, force: bool) -> int:
    path = hook_path(root)
    wanted = hook_text()
    existing = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
    if existing == wanted:
        print(f"pre-push hook already installed: {path}")
        return 0
    if existing is not None and HOOK_MARKER not in existing:
        if not force:
            raise UsageError(
                f"{path} exists and is not the ccvm gate hook; merge them by hand, or pass --force "
                f"to replace it (the old one is kept as pre-push.before-ccvm)"
            )
        backup = path.with_name("pre-push.before-ccvm")
        path.replace(backup)
        print(f"kept the previous hook as {backup}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(wanted, encoding="utf-8")
    path.chmod(0o755)
    print(f"installed the pre-push hook: {path} (runs: ccvm gate)")
    return 0
