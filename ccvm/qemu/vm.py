"""A running guest as a context manager.

A launch failure (LaunchError) carries the command and QEMU's own output
as fields.  Leaving the context always stops QEMU: a soft wait for the
guest's own power-off first, then SIGTERM, then SIGKILL to the process
group; then the console, then QEMU's log, each closed in its own
``finally`` so one failing step never leaves the next resource open.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TextIO

from ccvm import processes
from ccvm.errors import GuestError, LaunchError
from ccvm.qemu.argv import LaunchSpec, qemu_argv
from ccvm.qemu.console import Console
from ccvm.qemu.pump import DRAIN_S

CONNECT_TIMEOUT_S = 15.0  # QEMU creating its sockets
POWEROFF_GRACE_S = 5.0  # the guest powering off after its EXIT line

EXIT_LINE = re.compile(r"^CCVM:EXIT (\d+)\r?$", re.M)
INIT_LINE = re.compile(r"^CCVM:INIT channel\r?$", re.M)


def connect_socket(
    path: Path, deadline: float, *, alive: Callable[[], bool], failure: Callable[[str], LaunchError]
) -> socket.socket:
    """Connect to a chardev socket QEMU listens on, once QEMU has made it; ``failure(reason)``
    is raised when QEMU exits first or the deadline passes."""
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except OSError:
            sock.close()
        if not alive():
            raise failure("QEMU exited during start-up")
        if time.monotonic() > deadline:
            raise failure(f"QEMU did not open {path.name} within {CONNECT_TIMEOUT_S:g}s")
        time.sleep(0.01)


class VM:
    def __init__(
        self,
        spec: LaunchSpec,
        *,
        log_dir: Path,
        env: dict[str, str] | None = None,
        mirror_serial: TextIO | None = None,
        mirror_agent: TextIO | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        self.spec = spec
        self.cancelled = cancelled
        self.env = env
        self.mirrors = {"mirror_serial": mirror_serial, "mirror_agent": mirror_agent}
        self.argv = qemu_argv(spec)
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.console: Console | None = None
        self._qemu_log: BinaryIO | None = None
        self.started_at = 0.0
        self.exited_cleanly = False

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> VM:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        # the program's output reaches ccvm's mirror of it, unless the run is being stopped
        ended = exc_type is None or issubclass(exc_type, GuestError)
        self.close(drain_s=DRAIN_S if ended else 0.0)

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._qemu_log = (self.log_dir / "qemu.log").open("wb")
        self.started_at = time.monotonic()
        try:
            self.proc = processes.spawn(
                self.argv, stdin=subprocess.DEVNULL, env=self.env, stdout=self._qemu_log, stderr=subprocess.STDOUT
            )
        except OSError as exc:  # ShuttingDown included: the run was stopped meanwhile
            raise LaunchError(f"cannot start {self.argv[0]}: {exc}", argv=self.argv) from None
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        serial = self._connect(self.spec.serial.path, deadline)
        agent = self._connect(self.spec.agent.path, deadline)
        control = self._connect(self.spec.control.path, deadline)
        self.console = Console(
            serial=serial,
            agent=agent,
            control=control,
            log_dir=self.log_dir,
            qemu_alive=self.alive,
            cancelled=self.cancelled,
            **self.mirrors,
        )

    def _connect(self, path: Path, deadline: float) -> socket.socket:
        return connect_socket(path, deadline, alive=self.alive, failure=self._launch_failure)

    def _launch_failure(self, reason: str) -> LaunchError:
        if self._qemu_log is not None:
            self._qemu_log.flush()
        output = (self.log_dir / "qemu.log").read_text(errors="replace").strip()
        return LaunchError(reason, argv=self.argv, output=output)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self, drain_s: float = 0.0) -> int | None:
        """Stop QEMU, then close the console (waiting at most ``drain_s`` for its mirrors to write what
        the guest printed), then QEMU's log; each step runs even when the one before it raised.
        Returns QEMU's exit status, or None when there was no QEMU or it could not be reaped."""
        try:
            return self._stop_qemu()
        finally:
            try:
                self._close_console(drain_s)
            finally:
                self._close_qemu_log()

    def _stop_qemu(self) -> int | None:
        """Soft first: after the exit line the guest powers itself off, so
        wait POWEROFF_GRACE_S; otherwise, or when it does not, stop the group."""
        if self.proc is None:
            return None
        try:
            status = self.proc.wait(timeout=POWEROFF_GRACE_S if self.exited_cleanly else 0)
        except subprocess.TimeoutExpired:
            return processes.stop(self.proc)
        processes.forget(self.proc)
        return status

    def _close_console(self, drain_s: float) -> None:
        console, self.console = self.console, None
        if console is not None:
            console.close(drain_s)

    def _close_qemu_log(self) -> None:
        log, self._qemu_log = self._qemu_log, None
        if log is not None:
            log.close()

    # -- waiting -------------------------------------------------------------

    def wait_exit_status(self, *, deadline: float) -> tuple[int, str]:
        """Wait for the program's exit line; returns (status, agent text before it)."""
        assert self.console is not None
        self.console.wait_for(INIT_LINE, deadline=deadline, what="the guest init")
        match = self.console.wait_for(EXIT_LINE, deadline=deadline, what="the program's exit line")
        self.exited_cleanly = True
        return int(match.group(1)), self.console.program_output()
