"""The host's terminal, for a guest program that runs on it.

``HostTerminal`` takes the terminal on standard input for one guest run:
it remembers its settings, puts it in raw mode (every key, Ctrl-C, Ctrl-Z
and Ctrl-\\ included, goes to the guest as a byte), turns the host's
SIGWINCH into a byte on a pipe the relay can wait on, and gives it all
back when the run ends, however it ends (the guest's exit, its power-off,
an error, SIGINT or SIGTERM to ccvm): the settings are restored and the
SIGWINCH handler is put back.

While the guest boots the terminal keeps ISIG, so a Ctrl-C before the
guest's program runs still stops ccvm; ``program_started`` turns it off.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import termios
from dataclasses import dataclass

from ccvm.errors import UsageError


@dataclass(frozen=True, kw_only=True)
class WindowSize:
    rows: int
    cols: int

    @property
    def known(self) -> bool:
        """A terminal that reports 0 rows or 0 columns does not know its size."""
        return self.rows > 0 and self.cols > 0


UNKNOWN = WindowSize(rows=0, cols=0)


def window_size(fd: int) -> WindowSize:
    """The terminal's size (TIOCGWINSZ); UNKNOWN when it cannot say."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return UNKNOWN
    rows, cols, _, _ = struct.unpack("HHHH", packed)
    return WindowSize(rows=rows, cols=cols)


def require_terminal(fd: int, what: str) -> None:
    """One line and exit status 2 when ``fd`` is not a terminal: nothing was changed."""
    if not os.isatty(fd):
        raise UsageError(f"{what} needs a terminal on standard input (it is not one); run it from a terminal")


def _raw(attrs: list, *, keep_signals: bool) -> list:
    """cfmakeraw's settings; with ``keep_signals`` Ctrl-C still signals ccvm."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attrs
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP)
    iflag &= ~(termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN)
    lflag = lflag | termios.ISIG if keep_signals else lflag & ~termios.ISIG
    cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    cc = list(cc)
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    return [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]


class HostTerminal:
    """The terminal on ``fd`` for one run; a context manager."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = 0 if fd is None else fd
        self._saved: list | None = None
        self._old_winch: object = None
        self.winch_r = self.winch_w = -1

    def __enter__(self) -> HostTerminal:
        self._saved = termios.tcgetattr(self.fd)
        try:
            self.winch_r, self.winch_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._old_winch = signal.signal(signal.SIGWINCH, self._on_winch)
            termios.tcsetattr(self.fd, termios.TCSADRAIN, _raw(self._saved, keep_signals=True))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _on_winch(self, _signum: int, _frame) -> None:
        with contextlib.suppress(OSError):  # the pipe is full: a wake-up is already pending
            os.write(self.winch_w, b"w")

    def program_started(self) -> None:
        """The guest's program has the terminal now: Ctrl-C and friends are its keys."""
        assert self._saved is not None
        termios.tcsetattr(self.fd, termios.TCSADRAIN, _raw(self._saved, keep_signals=False))

    def size(self) -> WindowSize:
        return window_size(self.fd)

    def resized(self) -> bool:
        """Whether SIGWINCH came since the last call (the pipe is drained)."""
        came = False
        while True:
            try:
                chunk = os.read(self.winch_r, 512)
            except BlockingIOError:
                return came
            if not chunk:
                return came
            came = True

    def close(self) -> None:
        """Give the terminal back: settings, then the signal handler, then the pipe; each step
        runs even when the one before it failed."""
        try:
            if self._saved is not None:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        except termios.error:
            pass  # the terminal is gone (its window closed): nothing to restore
        finally:
            self._saved = None
            if self._old_winch is not None:
                signal.signal(signal.SIGWINCH, self._old_winch)  # type: ignore[arg-type]
                self._old_winch = None
            for fd in (self.winch_r, self.winch_w):
                if fd >= 0:
                    os.close(fd)
            self.winch_r = self.winch_w = -1
