"""Where a command run on a project tree finds that project's matrix/."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ccvm.checks.sourcefiles import SourceFiles, discover
from ccvm.commands.reporting import add_junit_option, add_root_option, root_from
from ccvm.errors import ConfigError
from ccvm.matrix.baseline import Baseline, load_baseline
from ccvm.matrix.docs import DocsSettings, load_docs
from ccvm.matrix.model import matrix_root
from ccvm.matrix.style import Style, load_style
from ccvm.require import add_require_options


def project_matrix_dir(args: argparse.Namespace, root: Path) -> Path:
    """The project's matrix directory: --matrix, $CCVM_MATRIX, else ROOT/matrix.

    Without a matrix directory each file's defaults apply, unless one was named
    (--matrix or $CCVM_MATRIX): a named directory that is not there is an error,
    not a silent fall-back to other settings."""
    directory = matrix_root(getattr(args, "matrix", None), base=root)
    named = bool(getattr(args, "matrix", None) or os.environ.get("CCVM_MATRIX"))
    if named and not directory.is_dir():
        raise ConfigError(directory, None, "matrix directory not found; fix --matrix or CCVM_MATRIX")
    return directory


def style_for(args: argparse.Namespace, root: Path) -> Style:
    """matrix/style.yaml's formatter and linter settings (defaults without one)."""
    return load_style(project_matrix_dir(args, root))


def docs_for(args: argparse.Namespace, root: Path) -> DocsSettings:
    """matrix/docs.yaml: the book init recorded and its generated chapters (defaults without one)."""
    return load_docs(project_matrix_dir(args, root))


def baseline_for(args: argparse.Namespace, root: Path) -> Baseline:
    """matrix/baseline.yaml, the findings known since adoption (none without one)."""
    return load_baseline(project_matrix_dir(args, root))


@dataclass(frozen=True, kw_only=True)
class SourceTree:
    """What `ccvm fmt` and `ccvm lint` check: the project's source files, read with its matrix/style.yaml
    and matrix/baseline.yaml."""

    root: Path
    files: SourceFiles
    style: Style
    baseline: Baseline

    def describe_files(self) -> str:
        how = (
            "known to git (tracked, or untracked and not ignored)"
            if self.files.from_git
            else "found by walking the tree (not a git work tree)"
        )
        files = self.files
        return f"{len(files.shell)} shell, {len(files.python)} Python, {len(files.nix)} Nix file(s), {how}"

    def known_note(self, what: str) -> str:
        return f"{what}: {self.baseline.count()} finding(s) known from matrix/baseline.yaml; new ones fail"


def add_source_tree_options(parser: argparse.ArgumentParser, what: str, tools: Iterable[str], example: str) -> None:
    """A source tree check's options: --require and --allow-missing for its tools, --junit, --root."""
    add_require_options(parser, tools, example)
    add_junit_option(parser, what)
    add_root_option(parser)


def source_tree(args: argparse.Namespace) -> SourceTree:
    """The tree under --root, its source files, style and baseline."""
    root = root_from(args)
    return SourceTree(root=root, files=discover(root), style=style_for(args, root), baseline=baseline_for(args, root))
