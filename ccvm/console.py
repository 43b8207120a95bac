"""Driving a guest's two channels through pexpect.

* the kernel's serial console: drained by a background reader into
  ``console.log``, watched for failure patterns (panic, Oops, ...);
* the agent channel (a virtio console): where init and the program write
  their ``CCVM:`` lines, read by ``wait_for``.

``wait_for`` is the one wait helper: it has a deadline, fails at once on a
failure pattern, on EOF or on QEMU exiting, and on its last try drains
everything buffered and reports the last lines of both channels.
"""

from __future__ import annotations

import collections
import contextlib
import re
import socket
import threading
import time
from pathlib import Path
from typing import TextIO

import pexpect
import pexpect.fdpexpect

TAIL_LINES = 40
POLL_S = 0.2  # the longest a failure can go unnoticed once its line arrives

KERNEL_FAILURES = re.compile(r"Kernel panic[^\r\n]*|Oops[^\r\n]*|not syncing[^\r\n]*|ccvm init: FAIL[^\r\n]*")
AGENT_FAILURE = re.compile(r"CCVM:FAIL ([^\r\n]*)")


class GuestFailure(Exception):
    """The guest failed; ``str`` is one line, ``tail`` the console context."""

    def __init__(self, reason: str, tail: str = "", line_at: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tail = tail
        self.line_at = line_at  # monotonic time the failure line arrived, when one did


PROTOCOL_LINE = re.compile(r"^CCVM:(INIT|EXIT|FAIL)\b")


class _Log:
    """pexpect logfile_read target: writes the log, keeps a tail and
    optionally mirrors complete lines (minus protocol lines) to a stream."""

    def __init__(self, path: Path, mirror: TextIO | None = None) -> None:
        self.mirror = mirror
        self.handle = path.open("w", encoding="utf-8", errors="replace")
        self.lines: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._partial = ""

    def write(self, text: str) -> None:
        self.handle.write(text)
        self._partial += text
        *complete, self._partial = self._partial.replace("\r", "").split("\n")
        for line in complete:
            self.lines.append(line)
            if self.mirror is not None and not PROTOCOL_LINE.match(line):
                self.mirror.write(line + "\n")
                self.mirror.flush()

    def flush(self) -> None:
        self.handle.flush()

    def tail_text(self) -> str:
        lines = list(self.lines) + ([self._partial] if self._partial else [])
        return "\n".join(lines[-TAIL_LINES:])

    def close(self) -> None:
        self.handle.close()


def _channel(sock: socket.socket, log: _Log) -> pexpect.fdpexpect.fdspawn:
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
        log_dir: Path,
        qemu_alive,
        mirror_serial: TextIO | None = None,
        mirror_agent: TextIO | None = None,
    ) -> None:
        self.serial_log = _Log(log_dir / "console.log", mirror_serial)
        self.agent_log = _Log(log_dir / "agent.log", mirror_agent)
        self.serial = _channel(serial, self.serial_log)
        self.agent = _channel(agent, self.agent_log)
        self._qemu_alive = qemu_alive
        self.kernel_failure: str | None = None
        self.failure_at: float | None = None
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._drain_serial, name="ccvm-serial", daemon=True)
        self._reader.start()

    def _drain_serial(self) -> None:
        while not self._stop.is_set():
            try:
                index = self.serial.expect([KERNEL_FAILURES, pexpect.EOF, pexpect.TIMEOUT], timeout=POLL_S)
            except (OSError, ValueError):
                return  # closed under us during shutdown
            if index == 0 and self.kernel_failure is None:
                self.kernel_failure = self.serial.after.strip()
                self.failure_at = time.monotonic()
            elif index == 1:
                return

    def tails(self) -> str:
        return (
            f"--- last {TAIL_LINES} lines of the kernel console ---\n{self.serial_log.tail_text()}\n"
            f"--- last {TAIL_LINES} lines of the agent channel ---\n{self.agent_log.tail_text()}"
        )

    def _drain_agent(self) -> None:
        try:
            while True:
                self.agent.read_nonblocking(65536, timeout=0)
        except (pexpect.TIMEOUT, pexpect.EOF, OSError, ValueError):
            pass

    def _fail(self, reason: str, line_at: float | None = None) -> GuestFailure:
        time.sleep(POLL_S)  # let the serial reader catch the lines around it
        self._drain_agent()
        return GuestFailure(reason, self.tails(), line_at)

    def _exited(self, what: str) -> GuestFailure:
        """QEMU went away: a panic (panic=-1 reboots at once, -no-reboot exits)
        is the likely cause, so let the serial reader finish before judging."""
        self._reader.join(timeout=1.0)
        if self.kernel_failure:
            return self._fail(f"kernel console: {self.kernel_failure}", self.failure_at)
        return self._fail(f"QEMU exited before {what}")

    def wait_for(self, pattern: re.Pattern[str], *, deadline: float, what: str) -> re.Match[str]:
        """Wait on the agent channel for ``pattern`` until ``deadline`` (monotonic)."""
        patterns = [pattern, AGENT_FAILURE, pexpect.EOF, pexpect.TIMEOUT]
        while True:
            if self.kernel_failure:
                raise self._fail(f"kernel console: {self.kernel_failure}", self.failure_at)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(f"timed out waiting for {what}")
            index = self.agent.expect(patterns, timeout=min(POLL_S, remaining))
            if index == 0:
                return self.agent.match
            if index == 1:
                raise self._fail(f"guest init failed: {self.agent.match.group(1).strip()}", time.monotonic())
            if index == 2 or not self._qemu_alive():
                raise self._exited(what)

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=2 * POLL_S + 1)
        for channel in (self.serial, self.agent):
            with contextlib.suppress(OSError):
                channel.close()
        self.serial_log.close()
        self.agent_log.close()
