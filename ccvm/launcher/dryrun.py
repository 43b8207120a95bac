"""A dry run never boots.

Every dry run of the launcher under test (the host suite's cases, the
project's host scripts, any other caller with the dry-run hook on) runs
through one ``DryRunGuard`` per run: under a supervisor that watches the
launcher's whole process tree (ccvm.processes).  A descendant that is a
QEMU or a Nix build stops the tree at once; the run fails with one line
naming what was started, and from then on the guard refuses to run that
launcher's dry run again, saying why.  Whatever a dry run leaves running
when it exits is stopped with it, and named.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ccvm import processes
from ccvm.matrix.launcher import Launcher
from ccvm.processes import Booted, Completed


class IgnoredHook(Exception):
    """This dry run started a QEMU or a Nix build; its tree was stopped at once."""

    def __init__(self, message: str, completed: Completed) -> None:
        super().__init__(message)
        self.completed = completed


class NotRunAgain(Exception):
    """An earlier dry run of this launcher booted: it is not run again."""


def hook_text(launcher: Launcher) -> str:
    return f"{launcher.dry_run.variable}={launcher.dry_run.value}"


def _same_file(word: str, path: str) -> bool:
    if word == path:
        return True
    if os.sep not in word:
        return False
    try:
        return os.path.samefile(word, path)
    except OSError:
        return False


def runs_program(argv: Sequence[str], program: Sequence[str]) -> bool:
    """Whether a process's argv runs the launcher: its program (a path, or the interpreter
    of ``python -m ccvm vm``) followed by the rest of its resolved argv."""
    if not program:
        return False
    first, rest = program[0], tuple(program[1:])
    return any(
        _same_file(word, first) and tuple(argv[index + 1 : index + 1 + len(rest)]) == rest
        for index, word in enumerate(argv)
    )


def left_running(done: Completed) -> str:
    """One line naming what a dry run left running when it exited ('' when nothing)."""
    left = done.tree.leftovers
    if not left:
        return ""
    return (
        f"the dry run left {len(left)} process(es) running after it exited ({processes.some_of(left)}); "
        "ccvm stopped them (a dry run leaves nothing running)"
    )


@dataclass
class DryRunGuard:
    """The dry runs of one launcher in one ccvm run; shared by every case and script."""

    _why: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def tripped(self) -> str:
        """Why no further dry run runs ('' while none booted)."""
        return self._why

    def not_run(self) -> str:
        return f"not run: {self._why}"

    def run(
        self,
        argv: Sequence[str],
        *,
        launcher: Launcher,
        program: Sequence[str],
        timeout_s: float,
        cwd: str,
        env: dict[str, str],
        runner: str = "",
        watch: Callable[[int], contextlib.AbstractContextManager] | None = None,
    ) -> Completed:
        """Run ``argv`` (the launcher itself, or ``runner``, a host script that runs it) with
        its whole tree watched (``watch``: as processes.run takes it).  NotRunAgain when an
        earlier dry run booted; IgnoredHook when this one did."""
        if self._why:
            raise NotRunAgain(self.not_run())
        done = processes.run(
            argv, timeout_s=timeout_s, cwd=cwd, env=env, supervise=processes.Supervision(forbid_boots=True), watch=watch
        )
        booted = done.tree.booted
        if booted is None:
            return done
        by_launcher = not runner or any(runs_program(step, program) for step in booted.chain[:-1])
        message = _message(launcher, booted, runner=runner, by_launcher=by_launcher)
        if by_launcher:
            with self._lock:
                self._why = self._why or (
                    f"the launcher ignored its dry-run hook ({hook_text(launcher)}) in an earlier dry run: "
                    f"it started {booted.what} ({booted.command})"
                )
        raise IgnoredHook(message, done)


def _message(launcher: Launcher, booted: Booted, *, runner: str, by_launcher: bool) -> str:
    started = f"it started {booted.what}, stopped at once: {booted.command}"
    if by_launcher:
        through = f" (run by {runner})" if runner else ""
        return f"the launcher ignored its dry-run hook ({hook_text(launcher)}){through}: {started}"
    return (
        f"{runner} started {booted.what} during the dry run, stopped at once: {booted.command} "
        "(a dry run never boots: the launcher ignored its dry-run hook, or the script boots a VM itself)"
    )
