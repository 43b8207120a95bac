"""ccvm init: adopt ccvm in an existing repository (matrix/, a noxfile, a generated workflow)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ccvm.adopt.adoptbaseline import record_at_adoption
from ccvm.adopt.formatters import describe
from ccvm.adopt.write import Adoption, adopt, refuse_to_adopt
from ccvm.errors import UsageError
from ccvm.matrix.actions import DEFAULT_WORKFLOW, WORKFLOW_NAME
from ccvm.nixtool import find_nix, version_lines


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "init",
        help="adopt ccvm here: write matrix/, a noxfile and .github/workflows/ccvm.yml from what the repo has",
        description="Read the repository (the flake's systems, checks and packages, docs/book.toml, host test "
        "scripts under tests/, shell and Nix files, treefmt / treefmt-nix / .editorconfig settings) and write "
        "matrix/*.yaml, noxfile.py (only if there is none) and the generated workflow .github/workflows/ccvm.yml "
        "(--workflow NAME: NAME.yml). The workflow installs ccvm from matrix/actions.yaml ccvm_pip, guessed from "
        "how this ccvm is installed (printed as guessed: ...). A matrix/launcher.yaml (or style.yaml) the project "
        "wrote is read and kept; no file the project has is changed. Refuses to run again (once any matrix file "
        "it writes exists) without --force.",
    )
    parser.add_argument("--force", action="store_true", help="write ccvm's matrix files again over an existing matrix/")
    parser.add_argument(
        "--root", type=Path, default=Path("."), metavar="DIR", help="the repository (default: the current directory)"
    )
    parser.add_argument(
        "--workflow",
        default=DEFAULT_WORKFLOW,
        metavar="NAME",
        help="write the generated workflow as .github/workflows/NAME.yml (default: %(default)s), e.g. when the "
        "project already has a workflow of its own by that name",
    )
    parser.set_defaults(func=run)


def _print(adoption: Adoption, baseline: tuple[str, ...]) -> None:
    findings = adoption.findings
    flake = findings.flake
    print(f"found: {len(findings.shell)} shell, {len(findings.nix)} Nix file(s)", end="")
    print(f"; book: {findings.book or 'none'}; host tests: {', '.join(findings.host_tests) or 'none'}")
    if flake:
        checks = flake.check_names()
        print(
            f"flake ({flake.how}): systems {', '.join(flake.systems) or 'none'}; checks {', '.join(checks) or 'none'}"
        )
    for line in describe(findings.style):
        print(line)
    if findings.launcher:
        scripts = ", ".join(findings.launcher.host_scripts) or "none"
        print(f"launcher: {findings.launcher.name} (matrix/launcher.yaml, kept as it is); host scripts: {scripts}")
    elif findings.found and findings.found.argv:
        print(f"launcher: {' '.join(findings.found.argv)} ({findings.found.source} reads {findings.found.variable})")
    else:
        print("launcher: none found (nothing reads CCVM_DRYRUN or another *_DRYRUN variable)")
    for script in findings.scripts:
        print(f"script: {script.path}: {script.kind} ({script.why})")
    for path in adoption.wrote:
        print(f"wrote {path}")
    for path in adoption.removed:
        print(f"removed {path} (init wrote it; there is nothing to declare in it now)")
    for what in adoption.left_alone:
        print(f"left alone: {what}")
    for guess in adoption.guesses:
        print(f"guessed: {guess}")
    for line in baseline:
        print(line)
    print("next: check ccvm_pip in matrix/actions.yaml; ccvm matrix --no-probe; ccvm gate --plan;", end=" ")
    print("commit matrix/ and the workflow")


def _nix_preflight(root: Path) -> None:
    """Which Nix will read the flake, and whether it can evaluate current nixpkgs (one line when it cannot)."""
    nix = find_nix() if (root / "flake.nix").is_file() else None
    for line in version_lines(nix):
        print(f"nix: {line}")


def run(args: argparse.Namespace) -> int:
    if args.matrix:
        raise UsageError("ccvm init writes ROOT/matrix; drop --matrix (use --root DIR)")
    if not args.root.is_dir():
        raise UsageError(f"--root {args.root}: not a directory")
    workflow = args.workflow.removesuffix(".yml").removesuffix(".yaml")
    if not WORKFLOW_NAME.fullmatch(workflow):
        raise UsageError(f"--workflow {args.workflow}: a file name such as ccvm-ci (no directory)")
    root = Path(os.path.abspath(args.root))
    refuse_to_adopt(root, args.force)  # before Nix is asked anything
    _nix_preflight(root)
    adoption = adopt(root, force=args.force, workflow=workflow)
    _print(adoption, record_at_adoption(root, adoption.findings.style).lines)
    return 0
