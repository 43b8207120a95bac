"""ccvm rehearse: run one job of the generated workflow here, as a hosted runner would."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccvm.ci.rehearse import DEFAULT_WORKFLOW, Options, rehearse
from ccvm.errors import ChecksFailed, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "rehearse",
        help="run one job of .github/workflows/ci.yml here, as the runner would",
        description="Run a job of the generated workflow in a fresh clone of HEAD: each run: step with "
        "GitHub's shell (bash --noprofile --norc -eo pipefail), env, matrix values, if: conditions and "
        "$GITHUB_ENV/$GITHUB_OUTPUT/$GITHUB_PATH/$GITHUB_STEP_SUMMARY; known uses: steps emulated, others "
        "reported skipped. Exit 0 when the job passes, 1 when a step fails. See docs/src/ci.md for what "
        "differs from a hosted runner.",
    )
    parser.add_argument("job", metavar="JOB", help="the job's id, e.g. host, boot, lint")
    parser.add_argument("--cell", metavar="CELL", help="the matrix entry to run (its cell, e.g. x86_64-tcg-q35)")
    parser.add_argument(
        "--workflow",
        type=Path,
        default=DEFAULT_WORKFLOW,
        metavar="PATH",
        help="workflow file, relative to the project (default: %(default)s)",
    )
    parser.add_argument("--root", type=Path, default=Path("."), metavar="DIR", help="project (default: .)")
    parser.add_argument(
        "--dir", type=Path, metavar="DIR", help="rehearsal directory, kept and reused (default: a new temporary one)"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the rehearsal directory (workspace clone, runner files, artifacts) afterwards",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.root.is_dir():
        raise UsageError(f"--root {args.root}: not a directory")
    options = Options(
        root=args.root.resolve(),
        job=args.job,
        workflow=args.workflow,
        cell=args.cell,
        directory=args.dir.resolve() if args.dir else None,
        keep=args.keep,
    )
    result = rehearse(options, say=lambda line: print(line, flush=True))
    if result.summary.strip():
        print("\n--- step summary ---")
        print(result.summary.rstrip())
    failed = [step for step in result.steps if step.outcome == "failure"]
    skipped = [step for step in result.steps if step.outcome == "skipped"]
    kept = args.keep or args.dir is not None
    where = f"rehearsal directory {result.directory}" if kept else "rehearsal directory removed (--keep keeps it)"
    print(
        f"\nrehearse {result.job}: {len(result.steps) - len(failed) - len(skipped)} passed, {len(failed)} failed, "
        f"{len(skipped)} skipped; {where}"
    )
    if failed:
        names = ", ".join(f"[{step.number}] {step.name}" for step in failed)
        raise ChecksFailed(f"job {result.job} failed at {names}")
    return 0
