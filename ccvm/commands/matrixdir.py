"""Where a command run on a project tree finds that project's matrix/."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ccvm.errors import ConfigError
from ccvm.matrix.model import matrix_root
from ccvm.matrix.style import Style, load_style


def style_for(args: argparse.Namespace, root: Path) -> Style:
    """matrix/style.yaml's formatter and linter settings (defaults without one).

    Without a matrix directory the defaults apply, unless one was named
    (--matrix or $CCVM_MATRIX): a named directory that is not there is an error,
    not a silent fall-back to other settings."""
    directory = matrix_root(getattr(args, "matrix", None), base=root)  # --matrix, $CCVM_MATRIX, ROOT/matrix
    named = bool(getattr(args, "matrix", None) or os.environ.get("CCVM_MATRIX"))
    if named and not directory.is_dir():
        raise ConfigError(directory, None, "matrix directory not found; fix --matrix or CCVM_MATRIX")
    return load_style(directory)
