"""Where a command run on a project tree finds that project's matrix/."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccvm.matrix.model import matrix_root
from ccvm.matrix.style import Style, load_style


def matrix_dir(args: argparse.Namespace, root: Path) -> Path:
    """--matrix, else $CCVM_MATRIX, else ROOT/matrix (the one resolver, matrix.model.matrix_root)."""
    return matrix_root(getattr(args, "matrix", None), base=root)


def style_for(args: argparse.Namespace, root: Path) -> Style:
    """matrix/style.yaml's formatter and linter settings (defaults without one)."""
    return load_style(matrix_dir(args, root))
