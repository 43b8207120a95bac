"""Child processes: each in its own session, tracked, stopped in steps.

Every child started here is registered until it is reaped.  ``stop_all``
(called on SIGINT/SIGTERM and at exit) kills every live process group, so
no QEMU outlives the runner.  On Linux each child also gets
PR_SET_PDEATHSIG=SIGKILL, which covers the runner itself being SIGKILLed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import termios
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ccvm.errors import ShuttingDown

# Named timeouts for the escalating stop.
TERM_GRACE_S = 2.0  # after SIGTERM to the group, before SIGKILL
KILL_GRACE_S = 5.0  # after SIGKILL, before we give up waiting to reap

_PR_SET_PDEATHSIG = 1
_live: set[subprocess.Popen] = set()
_own_group: set[int] = set()  # pids that lead their own process group (pgid == pid)
_live_lock = threading.Lock()


def _libc_prctl():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_prctl = _libc_prctl()  # resolved in the parent: the child only calls it


def _die_with_parent() -> None:
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _take_terminal() -> None:
    """In the child, after setsid: its standard input (a terminal) becomes its controlling terminal."""
    _die_with_parent()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def spawn(
    argv: Sequence[str], *, own_session: bool = True, controlling_tty: bool = False, **kwargs
) -> subprocess.Popen:
    """Start a child in its own session (and so its own process group).

    ``own_session=False`` is only for a child that must read the terminal
    (the interactive shell); it still dies with the runner.
    ``controlling_tty``: the child's standard input is a terminal (a
    pseudo-terminal's slave) that becomes its session's controlling
    terminal, as a terminal emulator starts a program.
    """
    preexec = _take_terminal if controlling_tty and own_session else _die_with_parent
    proc = subprocess.Popen(list(argv), start_new_session=own_session, preexec_fn=preexec, **kwargs)
    with _live_lock:
        _live.add(proc)
        if own_session:
            _own_group.add(proc.pid)
    if _shutting_down.is_set():  # lost the race with begin_shutdown: undo at once
        stop(proc, term_grace_s=0)
        raise ShuttingDown(f"{argv[0]}: not started, the run is stopping")
    return proc


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    """Signal the child's whole group, even after the leader itself is gone
    (its pgid is its pid, recorded at spawn); a child sharing our group is
    signalled alone."""
    try:
        if proc.pid in _own_group:
            os.killpg(proc.pid, signum)
        elif proc.poll() is None:
            proc.send_signal(signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop(proc: subprocess.Popen, *, term_grace_s: float = TERM_GRACE_S) -> int | None:
    """Stop a child's whole group: SIGTERM, then SIGKILL; always reap.

    Never raises: cleanup must not crash.  Returns the exit status, or
    None when the process could not be reaped in time.
    """
    try:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=term_grace_s)
        # The leader may be gone while others in its group live on.
        _signal_group(proc, signal.SIGKILL)
        try:
            return proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            return None
    finally:
        if proc.poll() is not None:  # only forget what was reaped
            _unregister(proc)


def _unregister(proc: subprocess.Popen) -> None:
    with _live_lock:
        _live.discard(proc)
        _own_group.discard(proc.pid)


def forget(proc: subprocess.Popen) -> None:
    """Drop a child that exited on its own from the registry (after reaping it)."""
    _signal_group(proc, signal.SIGKILL)  # stragglers in its group, if any
    _unregister(proc)


_shutting_down = threading.Event()


def begin_shutdown() -> None:
    """From now on no child may outlive its start: a worker thread that was
    about to spawn when the run was stopped gets ShuttingDown instead."""
    _shutting_down.set()
    stop_all()


def stop_all() -> None:
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        _signal_group(proc, signal.SIGKILL)
    for proc in procs:
        stop(proc, term_grace_s=0)


atexit.register(stop_all)


@dataclass(frozen=True, kw_only=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int | None  # None: timed out and killed
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(argv: Sequence[str], *, timeout_s: float, cwd: str | None = None, env: dict | None = None) -> Completed:
    """Run a command to completion with a hard timeout; the group dies with it."""
    proc = spawn(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    returncode: int | None
    try:
        out, err = proc.communicate(timeout=timeout_s)
        returncode = proc.returncode
    except subprocess.TimeoutExpired:
        stop(proc)
        try:
            out, err = proc.communicate(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            out, err = "", ""
        err = (err or "") + f"\n[timed out after {timeout_s:g}s and was killed]"
        returncode = None
    finally:
        if proc.poll() is None:
            stop(proc, term_grace_s=0)
        forget(proc)
    return Completed(argv=tuple(argv), returncode=returncode, stdout=out or "", stderr=err or "")


def default_jobs() -> int:
    """How many children to run at once by default: the cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


# -- finding programs ---------------------------------------------------------


def find_program(name: str, *, path_only: bool = False, search_path: str | None = None) -> str | None:
    """The one executable lookup: a tool in the running interpreter's bin
    directory (the venv its wheels installed into: shfmt, shellcheck, ruff,
    mdbook), else on PATH (``path_only``: PATH alone; ``search_path``: that
    PATH instead of this process's, and nothing else)."""
    if not path_only and search_path is None:
        beside = Path(sys.executable).parent / name  # not resolved: a venv's python is a symlink
        if beside.is_file() and os.access(beside, os.X_OK):
            return str(beside)
    return shutil.which(name, path=search_path)


def executable_at(word: str, base: Path) -> str | None:
    """A command's first word as an executable file, resolved: a word with a
    slash is a path (relative to ``base``), a bare name is looked up on PATH;
    None when that is not an executable file."""
    found = shutil.which(word) if os.sep not in word else str(base / word)
    if found and os.path.isfile(found) and os.access(found, os.X_OK):
        return str(Path(found).resolve())
    return None
