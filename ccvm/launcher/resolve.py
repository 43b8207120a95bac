"""Which launcher is under test, and where its program is.

The launcher under test is the project's declaration (matrix/launcher.yaml)
or ccvm's embedded ``ccvm vm``; ``ccvm host --wrapper PATH`` names one on
the command line.  Its argv is resolved against the project root (or a
build's output) once, with one error line when its program is missing.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from ccvm.errors import ConfigError, UsageError
from ccvm.launcher.embedded import EMBEDDED
from ccvm.matrix.axes import Accel, Arch, host_arch
from ccvm.matrix.launcher import Launcher
from ccvm.matrix.model import Matrix
from ccvm.processes import executable_at


def under_test(matrix: Matrix) -> Launcher:
    """The project's declared launcher, else ccvm's embedded one."""
    return matrix.declared_launcher or EMBEDDED


def project_root(matrix: Matrix) -> Path:
    """The directory the matrix/ folder is in: a declared launcher's paths are relative to it."""
    return matrix.root.resolve().parent


def given_wrapper(path: str) -> Launcher:
    """A wrapper named on the command line with nothing declared about it: ccvm vm's
    conventions, its dry-run style found out from its first dry run, and nothing declared
    about staging (ccvm vm's own rule, both files staged owner-only, is not every launcher's)."""
    return dataclasses.replace(
        EMBEDDED,
        name=path,
        argv=(path,),
        embedded=False,
        dry_run=dataclasses.replace(EMBEDDED.dry_run, prints=None),
        staged={},
    )


def embedded_argv() -> tuple[str, ...]:
    """``ccvm vm`` as this very interpreter runs it."""
    return (sys.executable, "-m", "ccvm", "vm")


def resolve_argv(launcher: Launcher, base: Path) -> tuple[str, ...]:
    """The launcher's argv with its program found under ``base`` (or on PATH);
    a missing program is one error line naming where the argv was declared."""
    if launcher.embedded:
        return embedded_argv()
    first, *rest = launcher.argv
    found = executable_at(first, base)
    if found:
        return (found, *rest)
    what = f"{first}: not an executable file"
    if launcher.source is None:
        raise UsageError(f"--wrapper {what}")
    hint = "; build it first (its `build:` step) or fix argv" if launcher.build else "; fix argv"
    raise ConfigError(launcher.source, launcher.argv_line, f"argv {what}{hint}")


def check_launcher(launcher: Launcher, root: Path) -> None:
    """What can be known about the launcher before booting anything: one error line each."""
    where = launcher.source or "launcher.yaml"
    if not launcher.boot.scenarios:
        raise ConfigError(where, None, "declares no boot scenarios; add `boot: {scenarios: [...]}` (docs: boot.md)")
    if not launcher.build:
        resolve_argv(launcher, root)  # nothing will build it: a missing launcher is an error now


def host_cell_env(launcher: Launcher) -> dict[str, str]:
    """The declared environment for a cell of this host's arch under tcg (the host suite's dry runs)."""
    arch = host_arch() or Arch.X86_64
    return launcher.cell_env(arch=arch, accel=Accel.TCG, machine=arch.facts.default_machine)
