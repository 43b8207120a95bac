"""Child processes: each in its own session, tracked, stopped in steps.

Every child started here is registered until it is reaped.  ``stop_all``
(called on SIGINT/SIGTERM and at exit) kills every live process group, so
no QEMU outlives the runner.  On Linux each child also gets
PR_SET_PDEATHSIG=SIGKILL, which covers the runner itself being SIGKILLed.

A launcher's run (a boot, a dry run, a host script) is started under a
supervisor (``spawn(..., supervise=Supervision())``): a small process of
its own, a child subreaper (PR_SET_CHILD_SUBREAPER), so that everything the
launcher starts, even what leaves its session (``setsid``, a daemon), stays
its descendant.  When the launcher exits, or ccvm stops the run, the
supervisor stops that whole tree (SIGTERM, a grace, SIGKILL), reaps it and
names what was still running.  Watching for boots (``forbid_boots``), it
stops the tree at once when a descendant is a QEMU or a Nix build
(``booting``) and names it: a dry run never boots.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import json
import os
import resource
import select
import shlex
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.errors import ShuttingDown

# Named timeouts for the escalating stop.
TERM_GRACE_S = 2.0  # after SIGTERM to the group, before SIGKILL
KILL_GRACE_S = 5.0  # after SIGKILL, before we give up waiting to reap
LEADER_POLL_S = 0.5  # how often run() looks whether a command itself has exited

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_live: set[subprocess.Popen] = set()
_own_group: set[int] = set()  # pids that lead their own process group (pgid == pid)
_live_lock = threading.Lock()


def _libc_prctl():
    """prctl(2) from the C library this interpreter runs on (its own symbols first: no
    ctypes.util.find_library, which runs ldconfig, in every supervisor's start-up)."""
    for name in (None, "libc.so.6"):
        try:
            return ctypes.CDLL(name, use_errno=True).prctl
        except (OSError, AttributeError):
            continue
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
    argv: Sequence[str],
    *,
    own_session: bool = True,
    controlling_tty: bool = False,
    supervise: Supervision | None = None,
    **kwargs,
) -> subprocess.Popen:
    """Start a child in its own session (and so its own process group).

    ``own_session=False`` is only for a child that must read the terminal
    (the interactive shell); it still dies with the runner.
    ``controlling_tty``: the child's standard input is a terminal (a
    pseudo-terminal's slave) that becomes its session's controlling
    terminal, as a terminal emulator starts a program.  ``supervise``:
    a launcher's run, under a supervisor that collects and stops its whole
    process tree (a ``Supervised``; a program that cannot be started is an
    OSError here, as without one).
    """
    if supervise is None:
        preexec = _take_terminal if controlling_tty and own_session else _die_with_parent
        proc = subprocess.Popen(list(argv), start_new_session=own_session, preexec_fn=preexec, **kwargs)
    else:
        proc = Supervised(argv, supervise, **kwargs)
    with _live_lock:
        _live.add(proc)
        if own_session and supervise is None:
            _own_group.add(proc.pid)
    if _shutting_down.is_set():  # lost the race with begin_shutdown: undo at once
        stop(proc, term_grace_s=0)
        raise ShuttingDown(f"{argv[0]}: not started, the run is stopping")
    if isinstance(proc, Supervised):
        try:
            proc.await_start()
        except OSError:
            stop(proc, term_grace_s=0)
            forget(proc)
            proc.close_pipes()
            raise
    return proc


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    """Signal the child's whole group, even after the leader itself is gone
    (its pgid is its pid, recorded at spawn); a child sharing our group is
    signalled alone.  A supervisor is asked instead: SIGTERM stops its tree
    (SIGTERM, a grace, SIGKILL), SIGKILL becomes SIGUSR1 (kill the tree now)."""
    try:
        if isinstance(proc, Supervised):
            if proc.poll() is None:
                proc.send_signal(signal.SIGUSR1 if signum == signal.SIGKILL else signum)
        elif proc.pid in _own_group:
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
            if not isinstance(proc, Supervised):
                return None
        proc.kill()  # a supervisor that did not finish its tree in time: itself, at least
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


# -- a launcher's run under a supervisor ------------------------------------------

SUPERVISOR_START_S = 60.0  # the supervisor's interpreter starting, on a loaded host
WATCH_POLL_S = 0.1  # how often a watched tree is walked for QEMU and Nix builds
IDLE_POLL_S = 1.0  # an unwatched tree: only its end matters (SIGCHLD wakes the supervisor)
TREE_KILL_S = 3.0  # after SIGKILL to a tree, before the supervisor gives up on what is left
EXEC_SETTLE_S = 2.0  # a process caught inside execve, before its new command line is readable
MAX_NAMED = 10  # leftovers named in a report
MAX_COMMAND_CHARS = 400


@dataclass(frozen=True, kw_only=True)
class Supervision:
    """How a launcher's run is supervised."""

    forbid_boots: bool = False  # a dry run: a descendant that is a QEMU or a Nix build stops the tree at once
    term_grace_s: float = TERM_GRACE_S  # after SIGTERM to what is left when the run ends, before SIGKILL


@dataclass(frozen=True, kw_only=True)
class Booted:
    """A QEMU or Nix build started under a watched tree; the tree was stopped at once."""

    what: str  # "QEMU", "a Nix build"
    command: str  # its command line
    chain: tuple[tuple[str, ...], ...] = ()  # the argv of each process from the tree's root down to it


@dataclass(frozen=True, kw_only=True)
class TreeEnd:
    """How a supervised tree ended, beyond the launcher's exit status."""

    booted: Booted | None = None
    leftovers: tuple[str, ...] = ()  # still running when the launcher exited; stopped (command lines)
    unstopped: tuple[str, ...] = ()  # could not be stopped (a process stuck in the kernel)
    problem: str = ""  # the supervisor itself failed, or something could not be stopped


def command_line(argv: Sequence[str]) -> str:
    """A process's argv as one shell-quoted line, cut short when long."""
    text = shlex.join(argv)
    return text if len(text) <= MAX_COMMAND_CHARS else text[: MAX_COMMAND_CHARS - 3] + "..."


def some_of(commands: Sequence[str], *, shown: int = 2) -> str:
    """Command lines for one line of text: the first few, then how many more."""
    unique = list(dict.fromkeys(commands))
    more = f" and {len(unique) - shown} more" if len(unique) > shown else ""
    return "; ".join(unique[:shown]) + more


def _bootstrap() -> str:
    package_parent = str(Path(__file__).resolve().parent.parent)
    return (
        f"import sys; sys.path.insert(0, {package_parent!r}); "
        "from ccvm.processes import supervise_main; sys.exit(supervise_main(sys.argv[1:]))"
    )


class Supervised(subprocess.Popen):
    """The supervisor of one launcher run.  Its exit status is the launcher's
    (a signal that killed the launcher kills it too); ``end()`` says the rest."""

    def __init__(self, argv: Sequence[str], supervision: Supervision, **kwargs) -> None:
        read, write = os.pipe()
        options = ["--report-fd", str(write), "--parent", str(os.getpid()), "--grace", f"{supervision.term_grace_s:g}"]
        if supervision.forbid_boots:
            options.append("--forbid-boots")
        self._report_fd: int | None = read
        self._buffer = b""
        self._events: list[dict] = []
        self._end: TreeEnd | None = None
        self.launcher_argv = tuple(argv)
        self.launcher_pid: int | None = None  # once started: it leads its own session (its sid is this pid)
        try:
            super().__init__(  # -I -S: nothing of the caller's Python setup, no site (ccvm's path is given)
                [sys.executable, "-I", "-S", "-c", _bootstrap(), *options, "--", *argv],
                pass_fds=(write,),
                start_new_session=True,
                preexec_fn=_die_with_parent,
                **kwargs,
            )
        except BaseException:
            os.close(read)
            self._report_fd = None
            raise
        finally:
            os.close(write)

    def _read_events(self, *, until_start: bool, timeout_s: float) -> None:
        """Read the report: up to the start event, or to its end (EOF)."""
        deadline = time.monotonic() + timeout_s
        while self._report_fd is not None:
            if until_start and any(e.get("event") in ("started", "error") for e in self._events):
                return
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._report_fd], [], [], left)[0]:
                return
            chunk = os.read(self._report_fd, 65536)
            if not chunk:
                os.close(self._report_fd)
                self._report_fd = None
            *lines, self._buffer = (self._buffer + chunk).split(b"\n")
            for line in lines:
                with contextlib.suppress(ValueError):
                    self._events.append(json.loads(line))

    def await_start(self) -> None:
        """Return once the launcher started; an OSError when it could not be."""
        self._read_events(until_start=True, timeout_s=SUPERVISOR_START_S)
        for event in self._events:
            if event.get("event") == "started":
                self.launcher_pid = int(event["pid"])
                return
            if event.get("event") == "error":
                raise OSError(event.get("errno") or 0, event.get("message", "could not start"), self.launcher_argv[0])
        if self._report_fd is None:
            raise OSError(f"{self.launcher_argv[0]}: its process supervisor exited before it started it")
        raise OSError(f"{self.launcher_argv[0]}: its process supervisor did not start within {SUPERVISOR_START_S:g}s")

    def end(self) -> TreeEnd:
        """How the tree ended; call after the supervisor was reaped."""
        if self._end is None:
            self._read_events(until_start=False, timeout_s=1.0 if self.poll() is not None else 0.0)
            self.close_report()
            self._end = _tree_end(self._events, reaped=self.returncode is not None)
        return self._end

    def close_report(self) -> None:
        if self._report_fd is not None:
            os.close(self._report_fd)
            self._report_fd = None

    def close_pipes(self) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        self.close_report()

    def __del__(self, *args, **kwargs) -> None:
        self.close_report()
        super().__del__(*args, **kwargs)


def _tree_end(events: list[dict], *, reaped: bool) -> TreeEnd:
    booted, leftovers, unstopped, problem = None, [], (), ""
    ended = False
    for event in events:
        kind = event.get("event")
        if kind == "booting":
            chain = tuple(tuple(argv) for argv in event.get("chain", ()))
            booted = Booted(what=event["what"], command=command_line(event["argv"]), chain=chain)
        elif kind == "leftover":
            leftovers.append(command_line(event["argv"]))
        elif kind == "end":
            ended = True
            unstopped = tuple(command_line(argv) for argv in event.get("unstopped", ()))
        elif kind == "crash":
            problem = f"the process supervisor failed: {event.get('message', '')}"
    if reaped and not ended and not problem:
        problem = "the process supervisor was killed before it stopped the launcher's processes"
    if unstopped and not problem:
        problem = f"{len(unstopped)} process(es) the launcher started could not be stopped ({some_of(unstopped)})"
    return TreeEnd(booted=booted, leftovers=tuple(leftovers), unstopped=unstopped, problem=problem)


@dataclass(frozen=True, kw_only=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int | None  # None: timed out and killed
    stdout: str
    stderr: str
    tree: TreeEnd = field(default_factory=TreeEnd)  # a supervised run: what its tree did beyond exiting

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(
    argv: Sequence[str],
    *,
    timeout_s: float,
    cwd: str | None = None,
    env: dict | None = None,
    supervise: Supervision | None = None,
    watch: Callable[[int], contextlib.AbstractContextManager] | None = None,
) -> Completed:
    """Run a command to completion with a hard timeout; the group (``supervise``: the whole tree) dies
    with it.  Once the command itself has exited, what it left in its group holding its output open is
    stopped, so a leftover never holds the run to its timeout.  ``watch(pid)``, when given, is a context
    held while it runs (the command's pid: under a supervisor, the launcher's, which leads its session)."""
    proc = spawn(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        supervise=supervise,
    )
    returncode: int | None
    try:
        leader = proc.launcher_pid if isinstance(proc, Supervised) else proc.pid
        with watch(leader) if watch else contextlib.nullcontext():
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
    tree = proc.end() if isinstance(proc, Supervised) else TreeEnd()
    return Completed(argv=tuple(argv), returncode=returncode, stdout=out or "", stderr=err or "", tree=tree)


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


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    session: int
    start: str  # the start time in clock ticks: with the pid, one process
    state: str
    argv: tuple[str, ...]
    named: bool = True  # argv is its command line; False: its name in the stat stands in (none was readable)


def _read_proc(pid: int) -> _Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("utf-8", "replace")
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    argv = tuple(word.decode("utf-8", "surrogateescape") for word in raw.split(b"\0")[:-1]) if raw else ()
    named = bool(argv)
    if not argv:  # a kernel thread, a zombie, a process inside execve: its name in the stat
        argv = (stat[stat.find("(") + 1 : stat.rfind(")")],)
    return _Proc(
        pid=pid, ppid=int(fields[1]), session=int(fields[3]), start=fields[19], state=fields[0], argv=argv, named=named
    )


def _settled(proc: _Proc) -> _Proc:
    """The process read again until its command line is readable: one caught inside execve has its new
    name and executable before its new command line (the kernel sets that last), for a moment that a
    loaded host stretches.  At most EXEC_SETTLE_S; then, or once it is gone, what was read."""
    deadline = time.monotonic() + EXEC_SETTLE_S
    while not proc.named and time.monotonic() < deadline:
        time.sleep(0.01)
        again = _read_proc(proc.pid)
        if again is None or again.start != proc.start:
            break
        proc = again
    return proc


def _process_info(proc: _Proc) -> ProcessInfo:
    links = {}
    for name in ("cwd", "exe"):
        try:
            links[name] = os.readlink(f"/proc/{proc.pid}/{name}")
        except OSError:
            links[name] = ""
    return ProcessInfo(
        pid=proc.pid,
        ppid=proc.ppid,
        session=proc.session,
        started=int(proc.start),
        argv=proc.argv,
        launched_as=_launched_as(proc.pid),
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
    that left the session.  Zombies are left out; one caught inside execve is read once it has its
    command line (``_settled``)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = _read_proc(int(entry))
            if proc is not None and proc.session == session and proc.state != "Z":
                found.append(_process_info(_settled(proc)))
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
    proc = _read_proc(info.pid)
    return proc is not None and proc.state != "Z" and int(proc.start) == info.started


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


# -- what a dry run must never start --------------------------------------------

# Programs that run the script named by their next word (a #! line's interpreter, env).
_INTERPRETERS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "busybox", "env"})
_QEMU_QUERIES = frozenset({"-version", "--version", "-help", "--help", "-h", "help", "?"})
# nix subcommands that build (or realise) derivations; `nix flake check` and `nix profile install` too.
_NIX_BUILDS = frozenset({"build", "run", "develop", "shell", "print-dev-env", "bundle"})
_NIX_COMMANDS = _NIX_BUILDS | {
    "flake", "profile", "eval", "path-info", "store", "log", "search", "repl", "why-depends", "copy", "edit",
    "fmt", "derivation", "hash", "key", "nar", "realisation", "registry", "upgrade-nix", "config", "daemon",
    "env", "doctor", "show-config", "show-derivation", "sign-paths", "verify", "optimise-store",
}  # fmt: skip


def _program_name(word: str) -> str:
    """A program's name as Nix's wrappers hide it: /nix/store/...-qemu/bin/.qemu-system-x86_64-wrapped."""
    name = os.path.basename(word)
    return name.lstrip(".").removesuffix("-wrapped")


def _program_words(argv: Sequence[str]) -> list[str]:
    """argv from the program itself: an interpreter running a script (``bash -e /nix/store/.../nix build``,
    ``env VAR=1 qemu-system-x86_64``) is the script."""
    words = list(argv)
    while len(words) > 1 and _program_name(words[0]) in _INTERPRETERS:
        rest = words[1:]
        while rest and (rest[0].startswith("-") or (_program_name(words[0]) == "env" and "=" in rest[0])):
            if rest[0] in ("-c", "-S"):  # a command string: what it runs shows as processes of their own
                return []
            rest = rest[1:]
        words = rest
    return words


def booting(argv: Sequence[str], exe: str = "") -> str:
    """What a process would boot or build, by its argv (and the file it runs): "QEMU" for
    ``qemu-system-*`` by any path, "a Nix build" for ``nix build``, ``nix-build``,
    ``nix-store --realise`` and their kind; "" for anything else, a QEMU asked only for
    its version or help, a Nix command with ``--dry-run``."""
    words = _program_words(argv)
    if not words:
        return ""
    names = {_program_name(words[0])}
    if exe:
        names.add(_program_name(exe))
    args = words[1:]
    if any(n.startswith("qemu-system-") or n == "qemu-kvm" for n in names):
        return "" if _QEMU_QUERIES.intersection(args) else "QEMU"
    if "--dry-run" in args:
        return ""
    if names & {"nix-build", "nix-shell"}:
        return "a Nix build"
    if "nix-store" in names and {"-r", "--realise", "--realize"}.intersection(args):
        return "a Nix build"
    if "nix" in names:
        first = next((word for word in args if word in _NIX_COMMANDS), "")
        after = args[args.index(first) + 1 :] if first else []
        second = next((word for word in after if not word.startswith("-")), "")
        if first in _NIX_BUILDS or (first, second) in {("flake", "check"), ("profile", "install"), ("profile", "add")}:
            return "" if "--no-build" in args else "a Nix build"
    return ""


# -- the supervisor: its own process, a child subreaper ----------------------------


def _children_of(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(word) for word in handle.read().split()]
    except OSError:
        pass
    return found


class _Tree:
    """The supervisor's descendants: the launcher and, a subreaper's due, every orphan under it."""

    def __init__(self, me: int, root: int) -> None:
        self.me, self.root = me, root
        self.root_status: int | None = None
        self.empty = False
        self.by_children = os.path.exists(f"/proc/{me}/task/{me}/children")

    def reap(self) -> None:
        """Reap every child that exited (the launcher, adopted orphans); note when none is left."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.empty = True
                return
            if pid == 0:
                return
            if pid == self.root:
                self.root_status = os.waitstatus_to_exitcode(status)

    def members(self) -> dict[int, _Proc]:
        """Every descendant, parents before their children."""
        found: dict[int, _Proc] = {}
        if self.by_children:
            queue = _children_of(self.me)
            while queue:
                pid = queue.pop(0)
                proc = _read_proc(pid)
                if proc is not None and pid not in found:
                    found[pid] = proc
                    queue += _children_of(pid)
            return found
        every = [p for p in map(_read_proc, (int(n) for n in os.listdir("/proc") if n.isdigit())) if p]
        ours = {self.me}
        for proc in sorted(every, key=lambda p: p.start):  # a parent starts before its child
            if proc.ppid in ours:
                ours.add(proc.pid)
                found[proc.pid] = proc
        return found

    def signal(self, proc: _Proc, signum: int) -> None:
        """Signal one descendant, never a process that took its pid after it ended."""
        try:
            if proc.ppid == self.me:  # our child: its pid stays ours until we reap it
                os.kill(proc.pid, signum)
                return
            fd = os.pidfd_open(proc.pid)
        except (ProcessLookupError, PermissionError):
            return
        except (AttributeError, OSError):  # no pidfds on this kernel
            again = _read_proc(proc.pid)
            if again is not None and again.start == proc.start:
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, signum)
            return
        try:
            again = _read_proc(proc.pid)
            if again is not None and again.start == proc.start:
                signal.pidfd_send_signal(fd, signum)
        except OSError:
            pass
        finally:
            os.close(fd)

    def live(self) -> list[_Proc]:
        return [proc for proc in self.members().values() if proc.state != "Z"]

    def chain(self, members: dict[int, _Proc], proc: _Proc) -> list[tuple[str, ...]]:
        chain = [proc.argv]
        while proc.ppid in members:
            proc = members[proc.ppid]
            chain.append(proc.argv)
        return chain[::-1]

    def find_booting(self) -> tuple[_Proc, str, list[tuple[str, ...]]] | None:
        members = self.members()
        for proc in members.values():
            if proc.state == "Z":
                continue
            exe = ""
            with contextlib.suppress(OSError):
                exe = os.readlink(f"/proc/{proc.pid}/exe")
            what = booting(proc.argv, exe)
            if what and not proc.named:  # judged, and named, by its whole command line, not the stat's name
                proc = _settled(proc)
                members[proc.pid] = proc
                what = booting(proc.argv, exe)
            if what:
                return proc, what, self.chain(members, proc)
        return None


class _Supervisor:
    def __init__(self, report_fd: int, grace_s: float, forbid_boots: bool) -> None:
        self.report = os.fdopen(report_fd, "w", buffering=1)
        self.grace_s, self.forbid_boots = grace_s, forbid_boots
        self.mode = ""  # "": running; "term": stop the tree; "kill": kill it now
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        for signum, mode in ((signal.SIGTERM, "term"), (signal.SIGINT, "term"), (signal.SIGHUP, "term")):
            signal.signal(signum, self._asked(mode))
        signal.signal(signal.SIGUSR1, self._asked("kill"))
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the loop
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def _asked(self, mode: str):
        def handler(_signum, _frame) -> None:
            if self.mode != "kill":
                self.mode = mode

        return handler

    def send(self, **event) -> None:
        """One report line; every argv in it is cut short, so the report stays far below a pipe's buffer."""
        for key in ("argv",):
            if key in event:
                event[key] = _short(event[key])
        for key in ("chain", "unstopped"):
            if key in event:
                event[key] = [_short(argv) for argv in event[key][-MAX_NAMED:]]
        with contextlib.suppress(OSError, ValueError):
            self.report.write(json.dumps(event) + "\n")

    def sleep(self, seconds: float) -> None:
        """Until a signal (SIGCHLD among them) or the time is up."""
        with contextlib.suppress(InterruptedError):
            select.select([self.wake_r], [], [], seconds)
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self.wake_r, 4096):
                pass

    def watch(self, tree: _Tree) -> None:
        """Until the launcher exits, ccvm asks to stop, or (watching) a descendant boots."""
        while True:
            tree.reap()
            if tree.root_status is not None or self.mode:
                return
            if self.forbid_boots:
                found = tree.find_booting()
                if found is not None:
                    proc, what, chain = found
                    tree.signal(proc, signal.SIGKILL)
                    self.send(event="booting", what=what, argv=list(proc.argv), chain=[list(a) for a in chain])
                    self.mode = self.mode or "term"
                    return
            self.sleep(WATCH_POLL_S if self.forbid_boots else IDLE_POLL_S)

    def stop(self, tree: _Tree) -> list[_Proc]:
        """SIGTERM every descendant once, SIGKILL what is left after the grace; reap all.
        What could not be stopped is returned."""
        started = time.monotonic()
        killing_since: float | None = None
        termed: set[tuple[int, str]] = set()
        while True:
            tree.reap()
            if tree.empty:
                return []
            now = time.monotonic()
            if killing_since is None and (self.mode == "kill" or now - started >= self.grace_s):
                killing_since = now
            kill = killing_since is not None
            if kill and now - killing_since >= TREE_KILL_S:
                return tree.live()
            for proc in tree.members().values():
                if kill:
                    tree.signal(proc, signal.SIGKILL)
                elif (proc.pid, proc.start) not in termed:
                    termed.add((proc.pid, proc.start))
                    tree.signal(proc, signal.SIGTERM)
            self.sleep(0.02 if kill else 0.05)


def _short(argv: Sequence[str], limit: int = MAX_COMMAND_CHARS) -> list[str]:
    """The first words of an argv, up to about ``limit`` characters (command_line cuts it to show)."""
    kept, total = [], 0
    for word in argv:
        if total + len(word) > limit:
            kept.append(word[: max(0, limit - total)] + "...")
            break
        kept.append(word)
        total += len(word) + 1
    return kept


def _quiet_stdio() -> None:
    """The launcher has the run's stdin, stdout and stderr; the supervisor lets go of them, so the
    output ends when the launcher's tree is gone."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _exit_as(status: int | None) -> int:
    """The launcher's exit status as the supervisor's own: a signal that killed the launcher kills it."""
    if status is None:
        return 125
    if status >= 0:
        return status
    signum = -status
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file of the supervisor
    signal.set_wakeup_fd(-1)
    with contextlib.suppress(OSError, ValueError):  # SIGKILL's cannot be set, and need not be
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum


def supervise_main(args: list[str]) -> int:
    """The supervisor's process: ``--report-fd N --parent PID --grace S [--forbid-boots] -- ARGV``.

    It becomes a child subreaper, starts ARGV in a session of its own, and
    reports on fd N, one JSON object a line: started or error, booting (the
    QEMU or Nix build it stopped), leftover (each process still running when
    the launcher exited), end (what could not be stopped)."""
    split = args.index("--")
    options, argv = args[:split], args[split + 1 :]
    value = dict(zip(options[::2], options[1::2], strict=False))
    supervisor = _Supervisor(int(value["--report-fd"]), float(value["--grace"]), "--forbid-boots" in options)
    tree: _Tree | None = None
    try:
        if _prctl is not None:
            _prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # ccvm gone: stop the tree, then go
        if os.getppid() != int(value["--parent"]) or supervisor.mode:
            supervisor.send(event="error", errno=0, message="the run stopped before the launcher started")
            return 125
        try:
            child = subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as exc:
            supervisor.send(event="error", errno=exc.errno or 0, message=exc.strerror or str(exc))
            return 127
        tree = _Tree(os.getpid(), child.pid)
        supervisor.send(event="started", pid=child.pid)
        _quiet_stdio()
        supervisor.watch(tree)
        if tree.root_status is not None and not supervisor.mode:
            # A fork of the launcher itself (its argv, behind a #! interpreter) is named last.
            live = sorted(tree.live(), key=lambda proc: proc.argv[-len(argv) :] == tuple(argv))
            for proc in live[:MAX_NAMED]:
                supervisor.send(event="leftover", argv=list(proc.argv))
        unstopped = supervisor.stop(tree)
        child.returncode = tree.root_status  # reaped here, not by Popen
        supervisor.send(event="end", status=tree.root_status, unstopped=[list(p.argv) for p in unstopped])
        return _exit_as(tree.root_status)
    except Exception as exc:  # the report says why; the tree is stopped all the same
        supervisor.send(event="crash", message=f"{type(exc).__name__}: {exc}")
        if tree is not None:
            supervisor.mode = "kill"
            with contextlib.suppress(Exception):
                supervisor.stop(tree)
        return 125
    finally:
        with contextlib.suppress(OSError):
            supervisor.report.close()
