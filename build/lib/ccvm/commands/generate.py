"""ccvm generate: the GitHub workflows and the flake's check list, from the matrix."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccvm.ci.generate import DriftKind, apply, conflict_message, find_drift, render_all, templates_dir
from ccvm.errors import ChecksFailed
from ccvm.matrix.model import load_matrix, matrix_root


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "generate",
        help="render .github/workflows/ and ci/flake-checks.json from the matrix",
        description="Render the templates in ci/ from the matrix into .github/workflows/*.yml and "
        "ci/flake-checks.json. With --check, change nothing and fail (exit 1, with a unified diff) "
        "when any generated file is stale, missing or no longer generated.",
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 with a diff when out of date")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="project tree to write into and compare with (default: the current directory)",
    )
    parser.add_argument(
        "--templates",
        type=Path,
        metavar="DIR",
        help="templates directory (default: ROOT/ci when it holds *.j2 templates, else ccvm's own defaults)",
    )
    parser.set_defaults(func=run)


def _summary(drift) -> str:
    by_kind = {kind: [d.path for d in drift if d.kind is kind] for kind in DriftKind}
    return "; ".join(f"{kind}: {', '.join(paths)}" for kind, paths in by_kind.items() if paths)


def run(args: argparse.Namespace) -> int:
    matrix = load_matrix(matrix_root(args.matrix, base=args.root))  # --matrix, $CCVM_MATRIX, ROOT/matrix
    outputs = render_all(matrix, templates_dir(args.root, args.templates))
    if args.check:
        drift = find_drift(args.root, outputs)
        by_path = {output.path: output for output in outputs}
        for item in drift:
            conflict = item.kind is DriftKind.CONFLICT
            print(f"{conflict_message(by_path[item.path])}\n" if conflict else item.diff, end="")
        if drift:
            raise ChecksFailed(
                f"generated files are out of date ({_summary(drift)}); run `ccvm generate` "
                "(or `nox -s generate`) and commit the result"
            )
        print(f"generated files are up to date ({len(outputs)} files)")
        return 0
    drift = apply(args.root, outputs)
    for item in drift:
        verb = "removed" if item.kind is DriftKind.EXTRA else "wrote"
        print(f"{verb} {item.path} ({item.kind})")
    if not drift:
        print(f"generated files are up to date ({len(outputs)} files)")
    return 0
