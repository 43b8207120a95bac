"""Which files are the project's own source, and which of them are shell,
Python or Nix.

Inside a git work tree the candidates are the tracked files (``git
ls-files``); outside one, the tree is walked, minus the directories that
hold tools' state (.git, .venv, .nox, reports...).  Test fixtures are test
data, not project code: some are misformatted on purpose, so they are
never offered to the formatters and linters.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ccvm.errors import HostError
from ccvm.git import git

# Directories never walked when the root is not a git work tree.
WALK_SKIPPED_DIRS = frozenset({".git", ".venv", ".nox", "reports", "__pycache__", ".pytest_cache", ".ruff_cache"})
# Tracked paths that are test data rather than project code.
NOT_PROJECT_CODE = ("tests/fixtures/",)

SHELL_EXTENSIONS = frozenset({".sh", ".bash"})
# Shells that both shfmt and shellcheck understand; zsh and fish are neither's.
_SHELL_SHEBANG = re.compile(rb"^#!\s*(?:\S*/)?(?:env\s+(?:-\S+\s+)*)?(?:sh|bash|dash|ash|ksh|mksh)(?:\s|$)")
_PYTHON_SHEBANG = re.compile(rb"^#!\s*(?:\S*/)?(?:env\s+(?:-\S+\s+)*)?python[0-9.]*(?:\s|$)")
_SHEBANG_BYTES = 256


@dataclass(frozen=True, kw_only=True)
class SourceFiles:
    """Project files by kind, as paths relative to the root (POSIX form)."""

    root: Path
    shell: tuple[str, ...]
    python: tuple[str, ...]
    nix: tuple[str, ...]
    from_git: bool  # False: the tree was walked (no git work tree here)


def _first_line(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(_SHEBANG_BYTES).split(b"\n", 1)[0]
    except OSError:
        return b""


def is_shell_script(path: Path) -> bool:
    """A shell script by extension (.sh, .bash) or by a sh/bash-family shebang."""
    if path.suffix in SHELL_EXTENSIONS:
        return True
    return bool(_SHELL_SHEBANG.match(_first_line(path)))


def is_python_file(path: Path) -> bool:
    return path.suffix == ".py" or (not path.suffix and bool(_PYTHON_SHEBANG.match(_first_line(path))))


def _git_files(root: Path) -> list[str] | None:
    """Files git knows under root (tracked, plus untracked ones it does not
    ignore: the same set the gate treats as the change), relative to root;
    None when root is not in a git work tree."""
    try:
        probe = git(root, "rev-parse", "--is-inside-work-tree")
        if not probe.ok or probe.stdout.strip() != "true":
            return None
        listing = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
    except HostError:  # no git here: the tree is walked instead
        return None
    if not listing.ok:
        return None
    return sorted({name for name in listing.stdout.split("\0") if name})


def _walked_files(root: Path) -> list[str]:
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in WALK_SKIPPED_DIRS and not d.endswith(".egg-info"))
        base = Path(directory)
        found.extend(base.joinpath(name).relative_to(root).as_posix() for name in files)
    return sorted(found)


def _is_project_code(relpath: str) -> bool:
    return not any(relpath.startswith(prefix) for prefix in NOT_PROJECT_CODE)


def candidate_files(root: Path) -> tuple[list[str], bool]:
    """Regular files (no symlinks) that belong to the project, and whether git listed them."""
    tracked = _git_files(root)
    names = tracked if tracked is not None else _walked_files(root)
    regular = [n for n in names if _is_project_code(n) and (root / n).is_file() and not (root / n).is_symlink()]
    return regular, tracked is not None


def discover(root: Path) -> SourceFiles:
    names, from_git = candidate_files(root)
    return SourceFiles(
        root=root,
        shell=tuple(n for n in names if is_shell_script(root / n)),
        python=tuple(n for n in names if is_python_file(root / n)),
        nix=tuple(n for n in names if PurePosixPath(n).suffix == ".nix"),
        from_git=from_git,
    )
