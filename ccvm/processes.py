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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ccvm.errors import ShuttingDown

# Named timeouts for the escalating stop.
TERM_GRACE_S = 2.0  # after SIGTERM to the group, before SIGKILL
KILL_GRACE_S = 5.0  # after SIGKILL, before we give up waiting to reap
LEADER_POLL_S = 0.5  # how often run() looks whether a command itself has exited

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


def run(
    argv: Sequence[str],
    *,
    timeout_s: float,
    cwd: str | None = None,
    env: dict | None = None,
    watch: Callable[[int], contextlib.AbstractContextManager] | None = None,
) -> Completed:
    """Run a command to completion with a hard timeout; the group dies with it.  Once the command
    itself has exited, what it left in its group holding its output open is stopped, so a leftover
    never holds the run to its timeout.  ``watch(pid)``, when given, is a context held while it runs."""
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
        with watch(proc.pid) if watch else contextlib.nullcontext():
            out, err = _communicate(proc, timeout_s)
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


def _communicate(proc: subprocess.Popen, timeout_s: float) -> tuple[str, str]:
    """All the output, by the deadline (else TimeoutExpired); once the leader has exited, its
    group's stragglers (which may hold the pipes open) are killed and the rest read."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            return proc.communicate(timeout=max(0.0, min(LEADER_POLL_S, left)))
        except subprocess.TimeoutExpired:
            if proc.poll() is not None:
                _signal_group(proc, signal.SIGKILL)
                return proc.communicate(timeout=KILL_GRACE_S)
            if left <= LEADER_POLL_S:
                raise


# -- reading the process table ------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ProcessInfo:
    """One live process as /proc shows it."""

    pid: int
    ppid: int
    session: int
    started: int  # clock ticks after boot: with the pid, it names one process even when pids are reused
    argv: tuple[str, ...]
    cwd: str  # "" when it cannot be read
    exe: str  # "" when it cannot be read
    launched_as: str  # `_` in its environment: bash sets it to the path of each command it runs ("" if none)


def _stat(pid: int) -> tuple[bytes, ...] | None:
    """/proc/PID/stat's fields after the name (state, ppid, pgrp, session...), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return tuple(handle.read().rsplit(b")", 1)[1].split())  # the name in parentheses may hold anything
    except (OSError, IndexError):
        return None


def _process_info(pid: int, fields: tuple[bytes, ...]) -> ProcessInfo | None:
    base = f"/proc/{pid}"
    try:
        with open(f"{base}/cmdline", "rb") as handle:
            argv = tuple(word.decode("utf-8", "surrogateescape") for word in handle.read().split(b"\0")[:-1])
    except OSError:
        return None
    links = {}
    for name in ("cwd", "exe"):
        try:
            links[name] = os.readlink(f"{base}/{name}")
        except OSError:
            links[name] = ""
    return ProcessInfo(
        pid=pid,
        ppid=int(fields[1]),
        session=int(fields[3]),
        started=int(fields[19]),
        argv=argv,
        launched_as=_launched_as(pid),
        **links,
    )


def _launched_as(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            entries = handle.read().split(b"\0")
    except OSError:
        return ""
    found = next((entry[2:] for entry in entries if entry.startswith(b"_=")), b"")
    return found.decode("utf-8", "surrogateescape")


def session_processes(session: int) -> list[ProcessInfo]:
    """Every live process of a session (a child spawned here leads its own): what it started, unless
    that left the session.  Zombies are left out."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and int(fields[3]) == session and fields[0] != b"Z":
                info = _process_info(int(entry), fields)
                if info is not None:
                    found.append(info)
    return found


def descendants(root: int, table: list[ProcessInfo]) -> list[ProcessInfo]:
    """``root`` and everything under it in ``table``, parents first."""
    children: dict[int, list[ProcessInfo]] = {}
    for info in table:
        children.setdefault(info.ppid, []).append(info)
    found = [info for info in table if info.pid == root]
    for info in found:  # grows while it is walked
        found += children.get(info.pid, [])
    return found


def stop_processes(procs: list[ProcessInfo]) -> None:
    """Stop processes that are not our children (SIGTERM, then SIGKILL after the grace time); a
    pid reused meanwhile by another process is left alone."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for info in procs:
            if _alive(info):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(info.pid, signum)
        deadline = time.monotonic() + TERM_GRACE_S
        while signum == signal.SIGTERM and time.monotonic() < deadline:
            if not any(_alive(info) for info in procs):
                return
            time.sleep(0.05)


def _alive(info: ProcessInfo) -> bool:
    """Still running (a zombie is not), and still the same process."""
    fields = _stat(info.pid)
    return fields is not None and fields[0] != b"Z" and int(fields[19]) == info.started


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
