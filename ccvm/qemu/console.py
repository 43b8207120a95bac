"""Driving a guest's three channels through pexpect.

* the kernel's serial console: drained by a background reader into
  ``console.log``, watched for failure patterns (panic, Oops, ...);
* the program channel (virtio console hvc0): only the program's own
  output, drained by a second reader into ``agent.log`` (and mirrored to
  the terminal for ``ccvm vm``), never matched against protocol patterns;
* the control channel (virtio console hvc1): init's ``CCVM:`` protocol
  lines, read by ``wait_for``.  The program never writes here, so nothing
  it prints can fake an exit status or a failure.

``wait_for`` is the one wait helper: it has a deadline, fails at once on a
failure pattern, on EOF, on QEMU exiting or when the run is stopped, and on
its last try drains everything buffered and reports the last lines of the
channels.  ``failure_lines`` is the one console watcher: the serial reader
here and a declared launcher's output (ccvm.launcher.boot) both read
through it.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import pexpect
import pexpect.fdpexpect

from ccvm.errors import GuestFailure
from ccvm.qemu.pump import Pump

TAIL_LINES = 40
POLL_S = 0.2  # the longest a failure can go unnoticed once its line arrives
CAPTURE_LIMIT = 4 << 20  # output kept in memory (facts, expectations); the log keeps all
DRAIN_AFTER_EXIT_S = 5.0  # the program channel reaching EOF after the exit line
CATCH_UP_S = 5.0  # the longest a failure waits for the readers to log what had arrived before it

KERNEL_FAILURES = re.compile(r"Kernel panic[^\r\n]*|Oops[^\r\n]*|not syncing[^\r\n]*|ccvm init: FAIL[^\r\n]*")
STOPPED = "the run was stopped; the guest was killed"
CONTROL_FAILURE = re.compile(r"^CCVM:FAIL ([^\r\n]*)\r?$", re.M)


def failure_lines(
    channel: pexpect.spawnbase.SpawnBase, *, stopped: Callable[[], bool], idle: Callable[[], None] | None = None
) -> Iterator[str]:
    """Each kernel failure line (panic, Oops, init's FAIL) as it arrives on a
    console, until the console ends (EOF) or ``stopped()``; checked every POLL_S.
    ``idle`` is called after each POLL_S in which nothing more arrived: all
    that had arrived before it began is read (and logged) by then."""
    while not stopped():
        try:
            index = channel.expect([KERNEL_FAILURES, pexpect.EOF, pexpect.TIMEOUT], timeout=POLL_S)
        except (OSError, ValueError):
            return  # closed under us during shutdown
        if index == 0:
            yield channel.after.strip()
        elif index == 1:
            return
        elif idle is not None:
            idle()


class OutputLog:
    """pexpect logfile_read target: writes the log, keeps the last lines,
    captures up to CAPTURE_LIMIT characters and optionally mirrors the text
    to a stream as it arrives, unchanged.  The mirror is written on a thread
    of its own (ccvm.qemu.pump): a slow reader of the stream never holds up
    the channel's reader, so QEMU never drops the program's output."""

    def __init__(self, path: Path, mirror: TextIO | None = None) -> None:
        self.mirror: Pump[str] | None = None
        if mirror is not None:
            self.mirror = Pump(functools.partial(_write_flushed, mirror), name=f"ccvm-mirror-{path.stem}")
        self.handle = path.open("w", encoding="utf-8", errors="replace")
        self.lines: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._partial = ""
        self._captured: list[str] = []
        self._captured_size = 0

    def write(self, text: str) -> None:
        self.handle.write(text)
        if self.mirror is not None:
            self.mirror.put(text)
        if self._captured_size < CAPTURE_LIMIT:
            self._captured.append(text)
            self._captured_size += len(text)
        self._partial += text
        *complete, self._partial = self._partial.replace("\r\n", "\n").split("\n")
        self.lines.extend(complete)

    def flush(self) -> None:
        self.handle.flush()

    def text(self) -> str:
        return "".join(self._captured)

    def tail_text(self) -> str:
        lines = list(self.lines) + ([self._partial] if self._partial else [])
        return "\n".join(lines[-TAIL_LINES:])

    def close(self, drain_s: float = 0.0) -> None:
        """Close the log, once the mirror has written what it was given (waiting at most ``drain_s``)."""
        if self.mirror is not None:
            self.mirror.close(drain_s)
        self.handle.close()


def _write_flushed(stream: TextIO, text: str) -> None:
    stream.write(text)
    stream.flush()


def _channel(sock: socket.socket, log: OutputLog) -> pexpect.fdpexpect.fdspawn:
    """The channel owns the socket's descriptor from here on (closed by it)."""
    channel = pexpect.fdpexpect.fdspawn(
        sock.detach(), encoding="utf-8", codec_errors="replace", maxread=65536, searchwindowsize=65536
    )
    channel.logfile_read = log
    return channel


class Console:
    def __init__(
        self,
        *,
        serial: socket.socket,
        agent: socket.socket,
        control: socket.socket,
        log_dir: Path,
        qemu_alive,
        mirror_serial: TextIO | None = None,
        mirror_agent: TextIO | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        self.serial_log = OutputLog(log_dir / "console.log", mirror_serial)
        self.agent_log = OutputLog(log_dir / "agent.log", mirror_agent)
        self.control_log = OutputLog(log_dir / "control.log")
        self.serial = _channel(serial, self.serial_log)
        self.agent = _channel(agent, self.agent_log)
        self.control = _channel(control, self.control_log)
        self._qemu_alive = qemu_alive
        self._cancelled = cancelled or threading.Event()
        self.kernel_failure: str | None = None
        self.failure_at: float | None = None
        self._stop = threading.Event()
        # Each reader's count of polls that found nothing more to read (it ends with one more when it stops).
        self._idle = {"serial": 0, "agent": 0}
        self._idle_changed = threading.Condition()
        self._serial_reader = threading.Thread(target=self._drain_serial, name="ccvm-serial", daemon=True)
        self._agent_reader = threading.Thread(target=self._drain_agent, name="ccvm-agent", daemon=True)
        self._serial_reader.start()
        self._agent_reader.start()

    def _mark_idle(self, reader: str) -> None:
        with self._idle_changed:
            self._idle[reader] += 1
            self._idle_changed.notify_all()

    def _catch_up(self) -> None:
        """Wait (at most CATCH_UP_S) until each reader has read and logged all that had arrived: it found
        nothing more in a poll that ended after this was asked, or it has stopped."""
        readers = {"serial": self._serial_reader, "agent": self._agent_reader}
        with self._idle_changed:
            asked = dict(self._idle)
            self._idle_changed.wait_for(
                lambda: all(self._idle[name] > asked[name] or not t.is_alive() for name, t in readers.items()),
                timeout=CATCH_UP_S,
            )

    def _drain_serial(self) -> None:
        try:
            for line in failure_lines(self.serial, stopped=self._stop.is_set, idle=lambda: self._mark_idle("serial")):
                if self.kernel_failure is None:
                    self.kernel_failure = line
                    self.failure_at = time.monotonic()
        finally:
            self._mark_idle("serial")

    def _drain_agent(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.agent.read_nonblocking(65536, timeout=POLL_S)
                except pexpect.TIMEOUT:
                    self._mark_idle("agent")
                except (pexpect.EOF, OSError, ValueError):
                    return
        finally:
            self._mark_idle("agent")

    def program_output(self, *, timeout_s: float = DRAIN_AFTER_EXIT_S) -> str:
        """Everything the program printed, once its channel has closed (the
        guest powers off after the exit line) or ``timeout_s`` has passed."""
        self._agent_reader.join(timeout=timeout_s)
        return self.agent_log.text()

    def tails(self) -> str:
        return (
            f"--- last {TAIL_LINES} lines of the kernel console ---\n{self.serial_log.tail_text()}\n"
            f"--- last {TAIL_LINES} lines of the program's output ---\n{self.agent_log.tail_text()}\n"
            f"--- control channel ---\n{self.control_log.tail_text()}"
        )

    def _fail(self, reason: str, line_at: float | None = None, *, timed_out: bool = False) -> GuestFailure:
        self._catch_up()  # the tails hold every line that had arrived
        return GuestFailure(
            reason, tail=self.tails(), line_at=line_at, output=self.agent_log.text(), timed_out=timed_out
        )

    def _exited(self, what: str) -> GuestFailure:
        """QEMU went away: a panic (panic=-1 reboots at once, -no-reboot exits)
        is the likely cause, so let the serial reader finish before judging."""
        self._catch_up()  # the panic line, if it came, is read by now
        if self.kernel_failure:
            return self._fail(f"kernel console: {self.kernel_failure}", self.failure_at)
        return self._fail(f"QEMU exited before {what}")

    def wait_for(self, pattern: re.Pattern[str], *, deadline: float, what: str) -> re.Match[str]:
        """Wait on the control channel for ``pattern`` until ``deadline`` (monotonic)."""
        patterns = [pattern, CONTROL_FAILURE, pexpect.EOF, pexpect.TIMEOUT]
        while True:
            if self.kernel_failure:
                raise self._fail(f"kernel console: {self.kernel_failure}", self.failure_at)
            if self._cancelled.is_set():
                raise self._fail(STOPPED)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(f"timed out waiting for {what}", timed_out=True)
            index = self.control.expect(patterns, timeout=min(POLL_S, remaining))
            if index == 0:
                return self.control.match
            if index == 1:
                raise self._fail(f"guest init failed: {self.control.match.group(1).strip()}", time.monotonic())
            if index == 2 or not self._qemu_alive():
                raise self._exited(what)

    def close(self, drain_s: float = 0.0) -> None:
        """Stop the readers and close the channels and logs, waiting at most ``drain_s`` for the
        mirrors to write what had arrived."""
        self._stop.set()
        for reader in (self._serial_reader, self._agent_reader):
            reader.join(timeout=2 * POLL_S + 1)
        for channel in (self.serial, self.agent, self.control):
            with contextlib.suppress(OSError):
                channel.close()
        for log in (self.serial_log, self.agent_log, self.control_log):
            log.close(drain_s)
