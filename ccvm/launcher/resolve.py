"""Which launcher is under test, and where its program is.

The launcher under test is the project's declaration (matrix/launcher.yaml)
or ccvm's embedded ``ccvm vm``; ``ccvm host --wrapper PATH`` names one on
the command line.  Its argv is resolved against the project root (or a
build's output) once, with one error line when its program is missing.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

from ccvm.errors import ConfigError, UsageError
from ccvm.launcher.embedded import EMBEDDED
from ccvm.matrix.axes import Accel, Arch, host_arch
from ccvm.matrix.launcher import Launcher
from ccvm.matrix.model import Matrix
from ccvm.processes import executable_at

LAUNCHER = "launcher"  # the name --require and --allow-missing take for it
NOT_DECLARED = (
    "no matrix/launcher.yaml declares this project's launcher, so it is not tested, and ccvm's embedded "
    "launcher (ccvm vm) is not this project's; declare it (docs: launcher.md, Your own launcher)"
)


def under_test(matrix: Matrix) -> Launcher:
    """The project's declared launcher, else ccvm's embedded one (see ``undeclared``)."""
    return matrix.declared_launcher or EMBEDDED


def undeclared(matrix: Matrix) -> str:
    """Why the launcher under test would not be this project's: it adopted ccvm and declares none, so
    ccvm's embedded launcher would stand in, and passing would say nothing of the project (``NOT_DECLARED``);
    "" when a launcher is declared, or in ccvm's own repository, whose launcher is the embedded one."""
    return NOT_DECLARED if matrix.adopted and matrix.declared_launcher is None else ""


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


MAX_SCRIPT_BYTES = 1024 * 1024
_DRYRUN_NAME = re.compile(rb"\b[A-Za-z_][A-Za-z0-9_]*_DRY_?RUN\b")


def unread_hook(launcher: Launcher, program: str) -> str:
    """Why the dry-run hook may never have been switched on, read from the launcher's own text
    (a script): it never mentions the hook variable, naming the *_DRYRUN variables it does mention;
    "" when it mentions it, or when the program is not a script ccvm can read."""
    try:
        with open(program, "rb") as handle:
            text = handle.read(MAX_SCRIPT_BYTES)
    except OSError:
        return ""
    if not text.startswith(b"#!") or b"\0" in text[:4096]:
        return ""  # a compiled program: nothing to read
    variable = launcher.dry_run.variable
    if re.search(rb"\b" + re.escape(variable.encode()) + rb"\b", text):
        return ""
    others = sorted({name.decode() for name in _DRYRUN_NAME.findall(text)} - {variable})
    where = f"{launcher.source}: dry_run.variable" if launcher.source else "dry_run.variable in matrix/launcher.yaml"
    said = "the declared" if launcher.source else "the default"
    reads = f"; it mentions {', '.join(others)}: declare that ({where})" if others else f"; fix {where}"
    return f"{launcher.argv[0]} never mentions {variable}, {said} dry-run variable{reads}"
