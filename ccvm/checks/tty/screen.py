"""A program under a pseudo-terminal of a chosen size, and its screen as a
person sees it.

The program runs in its own session with the pseudo-terminal as its
controlling terminal (``ccvm.processes.spawn``: it and everything it
starts die with the run).  ccvm reads the terminal's master side and feeds
a terminal emulator (pyte), so what is checked is the screen, cursor
movement, clearing and scrolling included, not the stream of bytes; the
emulator's answers to the program's queries (cursor position, device
attributes) go back to it as a terminal's would.  A resize sets the
window size on the master (TIOCSWINSZ), as a terminal emulator does, so
the program's foreground job gets SIGWINCH, and resizes the emulated screen alike.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pty
import select
import struct
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pyte

from ccvm import processes

READ_SIZE = 65536
# A terminal that reports 0 rows or columns still shows something: it is drawn at 24x80, as
# programs that cannot learn a terminal's size assume.
FALLBACK_ROWS, FALLBACK_COLS = 24, 80


class _Screen(pyte.Screen):
    """pyte's screen, whose answers to the program go back to it."""

    def __init__(self, columns: int, lines: int, answer: Callable[[str], None]) -> None:
        super().__init__(columns, lines)
        self._answer = answer

    def write_process_input(self, data: str) -> None:
        self._answer(data)


def set_window_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtyScreen:
    """One program on one pseudo-terminal; a context manager (leaving it kills the program)."""

    def __init__(
        self, argv: list[str], *, env: dict[str, str], cwd: Path, rows: int, cols: int, log_path: Path
    ) -> None:
        self.argv = argv
        self.master, slave = pty.openpty()
        try:
            set_window_size(slave, rows, cols)
            self.initial_attrs = termios.tcgetattr(slave)  # the terminal as the program found it
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log = log_path.open("wb")
            self.proc = processes.spawn(
                argv,
                controlling_tty=True,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=str(cwd),
                close_fds=True,
            )
        except BaseException:
            os.close(self.master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(self.master, False)
        self.screen = _Screen(cols or FALLBACK_COLS, rows or FALLBACK_ROWS, self._answer)
        self.stream = pyte.ByteStream(self.screen)
        self.ended = False  # the program closed the terminal (it exited, with all it started)

    def __enter__(self) -> PtyScreen:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- talking to the program ---------------------------------------------

    def _answer(self, text: str) -> None:
        self.send(text.encode())

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 10
        while view and not self.ended:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError("the program has not read its input for 10s") from None
                self.pump(0.05)
            except OSError:
                self.ended = True

    def resize(self, rows: int, cols: int) -> None:
        set_window_size(self.master, rows, cols)
        self.screen.resize(rows or FALLBACK_ROWS, cols or FALLBACK_COLS)

    def pump(self, timeout_s: float) -> None:
        """Read what the program wrote within ``timeout_s`` into the screen."""
        if self.ended:
            time.sleep(max(0.0, timeout_s))
            return
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout_s))
        while ready and not self.ended:
            try:
                chunk = os.read(self.master, READ_SIZE)
            except BlockingIOError:
                return
            except OSError as exc:  # EIO: every holder of the terminal's slave side has gone
                if exc.errno != errno.EIO:
                    raise
                chunk = b""
            if not chunk:
                self.ended = True
                return
            self.log.write(chunk)
            self.stream.feed(chunk)

    def wait_until(self, check: Callable[[], bool], timeout_s: float) -> bool:
        """Pump until ``check()`` holds (True) or ``timeout_s`` passes or the program ends (False)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if check():
                return True
            left = deadline - time.monotonic()
            if left <= 0 or self.ended:
                return check()
            self.pump(min(left, 0.2))

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def dump(self) -> str:
        """The screen, numbered, for a failure's details."""
        rows = self.lines()
        width = len(str(len(rows)))
        return "\n".join(f"{n:>{width}}|{line}" for n, line in enumerate(rows, 1))

    # -- the end ---------------------------------------------------------------

    def wait_exit(self, timeout_s: float) -> int | None:
        """The program's exit status once it exits within ``timeout_s``, else None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.pump(min(0.2, max(0.0, deadline - time.monotonic())))
            status = self.proc.poll()
            if status is not None:
                self.pump(0)  # its last words
                return status
        return None

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                processes.stop(self.proc, term_grace_s=1.0)
            processes.forget(self.proc)  # anything left in its group
        finally:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.log.close()
