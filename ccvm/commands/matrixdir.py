"""Where a command run on a project tree finds that project's matrix/."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ccvm.matrix.style import Style, load_style


def matrix_dir(args: argparse.Namespace, root: Path) -> Path:
    """--matrix, else $CCVM_MATRIX, else ROOT/matrix."""
    if getattr(args, "matrix", None):
        return Path(args.matrix)
    if os.environ.get("CCVM_MATRIX"):
        return Path(os.environ["CCVM_MATRIX"])
    return root / "matrix"


def style_for(args: argparse.Namespace, root: Path) -> Style:
    """matrix/style.yaml's formatter and linter settings (defaults without one)."""
    return load_style(matrix_dir(args, root))
