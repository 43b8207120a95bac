"""The matrix ccvm ships: its guest pins and action pins, copies of ccvm's
own matrix/ (a test keeps them equal).  `ccvm init` starts a project's
matrix from them, and outside any project (no matrix/ here and none named)
`ccvm vm` and `ccvm doctor` boot the embedded guest with these pins."""

from __future__ import annotations

from pathlib import Path

from ccvm.matrix.model import Matrix
from ccvm.matrix.pins import parse_guest
from ccvm.matrix.yamlsrc import expect_mapping, load_yaml

DEFAULTS = Path(__file__).resolve().parent / "defaults"


def packaged_matrix() -> Matrix:
    """No cells, ccvm's own guest pins, default launcher settings."""
    path = DEFAULTS / "guest.yaml"
    return Matrix(root=DEFAULTS, cells=(), guest=parse_guest(expect_mapping(load_yaml(path), path, 1, "guest.yaml")))
