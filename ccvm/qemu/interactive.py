"""A guest program on the host's terminal: ``ccvm vm --shell``, and
``ccvm vm PROGRAM`` run in the foreground of a terminal.

ccvm holds the terminal itself (``ccvm.qemu.terminal.HostTerminal``, raw
mode) and relays, in one loop that waits on everything at once:

- the keys, byte for byte, to the program channel (hvc0, the guest
  program's controlling terminal, so Ctrl-C, Ctrl-Z and Ctrl-\\ become
  SIGINT, SIGTSTP and SIGQUIT for the guest's foreground job);
- the program's output to standard output;
- the window size: TERM and the size at start travel in ``config.sh``;
  each later size (the host's SIGWINCH) goes as a ``size ROWS COLS`` line
  on the ``ccvm.winsize`` port, where the guest's relay sets it on hvc0
  and the kernel sends SIGWINCH to the guest's foreground job.  Sizes
  wait until the relay says ``CCVM:INIT tty``; a storm of resizes sends
  at most one size every RESIZE_INTERVAL_S, always ending on the last;
  a size of 0 rows or columns (a terminal that does not know) is never sent;
  one size is in flight at a time: the next waits until the relay says
  ``CCVM:TTY size ROWS COLS`` (or SIZE_ACK_WAIT_S passes), so a storm never
  queues up in the guest, and keys typed after a resize wait for it too,
  so what they start (``stty size``, a redraw) sees the new size;
- the control channel's lines: ``CCVM:INIT run`` hands Ctrl-C to the
  guest (until then it stops ccvm), ``CCVM:EXIT N`` is the exit status.

The kernel console goes to ``logs/console.log`` in the scratch directory,
QEMU's own output to ``logs/qemu.log``; their tails explain a failure.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import select
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from ccvm import processes
from ccvm.errors import GuestFailure, LaunchError
from ccvm.guest.assets import GuestAssets
from ccvm.qemu.argv import LaunchSpec, qemu_argv
from ccvm.qemu.env import qemu_environment
from ccvm.qemu.launch import GuestRequest, Terminal, stage
from ccvm.qemu.pump import DRAIN_S, Pump
from ccvm.qemu.terminal import HostTerminal, WindowSize, window_size
from ccvm.qemu.vm import CONNECT_TIMEOUT_S, POWEROFF_GRACE_S, connect_socket

RESIZE_INTERVAL_S = 0.1  # at most one size sent to the guest per interval
SIZE_ACK_WAIT_S = 3.0  # keys typed after a resize wait this long at most for the guest (slow under TCG) to set the size
POLL_S = 0.5  # the longest the relay sleeps without looking at QEMU and the clock
MAX_PENDING_INPUT = 1 << 16  # keys not yet taken by the guest before ccvm stops reading more
TAIL_LINES = 20

_EXIT = re.compile(rb"^CCVM:EXIT (\d+)\r?$")
_FAIL = re.compile(rb"^CCVM:FAIL (.*?)\r?$")
_INIT = re.compile(rb"^CCVM:INIT (\S+)")
_SIZE_SET = re.compile(rb"^CCVM:TTY size (\d+) (\d+)\r?$")


def terminal_for(fd: int, environ: Mapping[str, str]) -> Terminal:
    """What the guest is told about the host terminal on ``fd``."""
    size = window_size(fd)
    return Terminal(term=environ.get("TERM", ""), rows=size.rows, cols=size.cols)


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _Relay:
    """One guest run's relay loop and what it learned."""

    def __init__(
        self,
        *,
        host: HostTerminal,
        proc: subprocess.Popen,
        agent: socket.socket,
        control: socket.socket,
        winsize: socket.socket,
        sent: WindowSize,
        out_fd: int,
        deadline: float | None,
    ) -> None:
        self.host, self.proc, self.out_fd, self.deadline = host, proc, out_fd, deadline
        self.agent, self.control, self.winsize = agent, control, winsize
        self.sent = sent  # the size the guest has (or was told at start)
        self.wanted: WindowSize | None = None  # a size to send once allowed
        self.tty_ready = False
        self.next_resize_at = 0.0
        self.in_flight: WindowSize | None = None  # sent, and not yet said set by the guest
        self.in_flight_until = 0.0  # after this, stop waiting for the guest to say so
        self.pending_in = bytearray()
        self.stdin_open = True
        # the program's output, written to the terminal on a thread of its own: the loop never
        # waits on a slow terminal, so it always reads the guest's channels (QEMU drops a
        # console's bytes when its socket is full)
        self.output = Pump(functools.partial(_write_all, out_fd), name="ccvm-output")
        self.open = {agent, control}
        self.control_buffer = b""
        self.status: int | None = None
        self.exit_at: float | None = None
        self.failure = ""
        for sock in (agent, control, winsize):
            sock.setblocking(False)

    # -- the loop ------------------------------------------------------------

    def run(self) -> None:
        while self.open and not self._done():
            # the terminal far behind: its output waits before the loop takes more
            channels = [sock for sock in self.open if sock is not self.agent or not self.output.full]
            readers: list = [self.host.winch_r, *channels]
            if self.stdin_open and len(self.pending_in) < MAX_PENDING_INPUT:
                readers.append(self.host.fd)
            writers = [self.agent] if self.pending_in and self.agent in self.open and not self._holding() else []
            ready, writable, _ = select.select(readers, writers, [], self._sleep())
            if self.host.winch_r in ready and self.host.resized():
                self._want(self.host.size())
            if self.agent in writable:
                self._send_keys()
            for sock in (self.agent, self.control):
                if sock in ready:
                    self._receive(sock)
            if self.host.fd in ready:
                self._read_keys()
            self._send_size()

    def _done(self) -> bool:
        now = time.monotonic()
        if self.exit_at is not None and now - self.exit_at > POWEROFF_GRACE_S:
            return True  # the guest said its status but did not power off: stop it
        if self.deadline is not None and now > self.deadline:
            return True
        return self.failure != "" or (self.proc.poll() is not None and not self._readable())

    def _readable(self) -> bool:
        ready, _, _ = select.select(list(self.open), [], [], 0)
        return bool(ready)

    def _sleep(self) -> float:
        now = time.monotonic()
        if self.in_flight is not None and now >= self.in_flight_until:
            self.in_flight = None  # the guest never said it set the size: stop waiting for it
        limits = [POLL_S]
        if self.in_flight is not None:  # its acknowledgement wakes the loop; this is the give-up time
            limits.append(max(0.0, self.in_flight_until - now))
        elif self.wanted is not None and self.tty_ready:
            limits.append(max(0.0, self.next_resize_at - now))
        if self.deadline is not None:
            limits.append(max(0.0, self.deadline - now))
        return min(limits)

    # -- keys and output -----------------------------------------------------

    def _read_keys(self) -> None:
        try:
            chunk = os.read(self.host.fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            self.stdin_open = False  # the terminal is gone: the guest program goes on
            return
        # A resize the loop has not seen yet (its SIGWINCH came with these keys): the keys wait for it.
        self._want(self.host.size())
        self.pending_in += chunk
        self._send_keys()

    def _holding(self) -> bool:
        """Keys typed after a resize wait until the guest has set the size, so that what they
        start (``stty size``, a redraw) sees it, as on a local terminal."""
        if self.wanted is not None and self.tty_ready:
            return True  # a size waits to be sent (its turn comes within SIZE_ACK_WAIT_S)
        return self.in_flight is not None and time.monotonic() < self.in_flight_until

    def _send_keys(self) -> None:
        if not self.pending_in or self.agent not in self.open or self._holding():
            return
        try:
            sent = self.agent.send(self.pending_in)
        except BlockingIOError:
            return
        except OSError:
            self.pending_in.clear()
            return
        del self.pending_in[:sent]

    def _receive(self, sock: socket.socket) -> None:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.open.discard(sock)
            return
        if sock is self.agent:
            self.output.put(chunk)
        else:
            self._control(chunk)

    # -- the control channel and the window size ------------------------------

    def _control(self, chunk: bytes) -> None:
        self.control_buffer += chunk
        *lines, self.control_buffer = self.control_buffer.split(b"\n")
        for line in lines:
            if found := _EXIT.match(line):
                self.status = int(found.group(1))
                self.exit_at = time.monotonic()
            elif found := _FAIL.match(line):
                self.failure = found.group(1).decode(errors="replace")
            elif found := _SIZE_SET.match(line):
                if WindowSize(rows=int(found.group(1)), cols=int(found.group(2))) == self.in_flight:
                    self.in_flight = None
                    self._send_size()
                    self._send_keys()
            elif found := _INIT.match(line):
                if found.group(1) == b"run":
                    self.host.program_started()
                elif found.group(1) == b"tty":
                    self.tty_ready = True
                    self._want(self.host.size())

    def _want(self, size: WindowSize) -> None:
        self.wanted = size if size.known and size != self.sent else None

    def _send_size(self) -> None:
        now = time.monotonic()
        if self.wanted is None or not self.tty_ready or now < self.next_resize_at:
            return
        if self.in_flight is not None and now < self.in_flight_until:
            return  # one size at a time: the guest is setting the last one
        line = f"size {self.wanted.rows} {self.wanted.cols}\n".encode()
        try:
            self.winsize.sendall(line)
        except BlockingIOError:
            return  # the guest is not reading sizes now; the newest is sent later
        except OSError:
            self.wanted = None
            return
        self.sent, self.in_flight, self.wanted = self.wanted, self.wanted, None
        self.next_resize_at = now + RESIZE_INTERVAL_S
        self.in_flight_until = now + SIZE_ACK_WAIT_S


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [], POLL_S)


def run_on_terminal(
    request: GuestRequest,
    assets: GuestAssets,
    scratch: Path,
    *,
    host: HostTerminal,
    timeout_s: float | None,
    out_fd: int = 1,
) -> int:
    """Run the program on the host terminal until it exits; returns its exit status.

    Raises LaunchError when QEMU does not start and GuestFailure when the
    guest ends (init fails, it powers off, QEMU exits, the timeout passes)
    without the program's exit status.  ``timeout_s`` None: no timeout, a
    person is at the keyboard (``ccvm vm --shell``).  QEMU is gone when
    this returns, whichever way.
    """
    terminal = request.terminal
    assert terminal is not None
    spec = stage(request, assets, scratch)
    argv = qemu_argv(spec)
    logs = scratch / "logs"
    with contextlib.ExitStack() as stack:
        qemu_log = stack.enter_context((logs / "qemu.log").open("wb"))
        try:
            proc = processes.spawn(
                argv, stdin=subprocess.DEVNULL, stdout=qemu_log, stderr=subprocess.STDOUT, env=qemu_environment()
            )
        except OSError as exc:
            raise LaunchError(f"cannot start {argv[0]}: {exc}", argv=argv) from None
        relay: _Relay | None = None
        ended = False
        try:
            agent, control, winsize = (stack.enter_context(sock) for sock in _connect(spec, proc, argv, logs))
            relay = _Relay(
                host=host,
                proc=proc,
                agent=agent,
                control=control,
                winsize=winsize,
                sent=WindowSize(rows=terminal.rows, cols=terminal.cols),
                out_fd=out_fd,
                deadline=None if timeout_s is None else time.monotonic() + timeout_s,
            )
            relay.run()
            ended = True
        finally:
            try:
                qemu_status = _stop(proc, said_exit=relay is not None and relay.status is not None)
            finally:  # what the program printed reaches the terminal; on Ctrl-C or an error, no waiting
                if relay is not None:
                    relay.output.close(DRAIN_S if ended else 0.0)
    assert relay is not None  # else _connect raised
    return _outcome(relay, qemu_status, logs, timeout_s)


def _connect(spec: LaunchSpec, proc: subprocess.Popen, argv: list[str], logs: Path) -> list[socket.socket]:
    def failure(reason: str) -> LaunchError:
        return LaunchError(reason, argv=argv, output=_tail(logs / "qemu.log"))

    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    channels = (spec.agent, spec.control, spec.winsize)
    return [connect_socket(c.path, deadline, alive=lambda: proc.poll() is None, failure=failure) for c in channels]


def _stop(proc: subprocess.Popen, *, said_exit: bool) -> int | None:
    """After the exit line the guest powers itself off: wait for that; else stop QEMU now."""
    try:
        status = proc.wait(timeout=POWEROFF_GRACE_S if said_exit else 0)
    except subprocess.TimeoutExpired:
        return processes.stop(proc)
    processes.forget(proc)
    return status


def _outcome(relay: _Relay, qemu_status: int | None, logs: Path, timeout_s: float | None) -> int:
    if relay.status is not None:
        return relay.status
    tail = _tail(logs / "console.log")
    if relay.failure:
        raise GuestFailure(f"guest init failed: {relay.failure}", tail=tail)
    if relay.deadline is not None and time.monotonic() > relay.deadline:
        raise GuestFailure(f"timed out after {timeout_s:g}s; QEMU was stopped", tail=tail, timed_out=True)
    raise GuestFailure(
        f"the guest powered off, or QEMU ended (status {qemu_status}), before the program's exit status came", tail=tail
    )
