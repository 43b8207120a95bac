"""Every user-facing error, each with its exit status.

Only ``ccvm.cli.main`` turns these into exit codes; nothing else calls
``sys.exit``.  Exit statuses (also documented in docs/src/exit-status.md):

    0   everything required passed
    1   a check failed (a cell, a build, a lint finding, the gate)
    2   bad input: usage, matrix files, option values
    3   the host cannot do what was asked (asset fetch failed, pinned
        package gone under the strict policy, a tool missing); a cell whose
        QEMU is missing is reported skipped, not an error
    124 the whole-run watchdog expired
    125 the guest never reported an exit status (``ccvm vm``)
    130 interrupted (SIGINT), 143 terminated (SIGTERM)

Two families, and the one error a process start adds:

* ``CcvmError`` and its subclasses: what the user sees, each with its exit
  status.
* ``GuestError`` and its subclasses: a guest, or the QEMU under it, did not
  do its part.  They carry structured fields (``reason``, the console
  ``tail``; for a launch failure the ``argv`` and QEMU's ``output``), so no
  caller parses a message.  They are not user-facing by themselves: the boot
  runner turns one into a failed case, the probe into a reason, ``ccvm vm``
  into HostError or GuestNoExitStatus.
* ``ShuttingDown``: a child process refused because the run is stopping
  (an OSError, as any failure to start a process is).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path


class CcvmError(Exception):
    """Base class: a one-line message and an exit status."""

    exit_status = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _shown(path: object) -> str:
    """A file as the user would name it: relative to the working directory when it lies under it."""
    if isinstance(path, Path) and path.is_absolute():
        try:
            here = os.getcwd()
            if here != os.sep:
                return str(path.relative_to(here))
        except (ValueError, OSError):  # elsewhere, or the working directory is gone
            pass
    return str(path)


class ChecksFailed(CcvmError):
    """One or more checks ran and failed; the report says which."""

    exit_status = 1


class UsageError(CcvmError):
    """A command-line option or environment variable has a bad value."""

    exit_status = 2


class ConfigError(CcvmError):
    """A matrix file is malformed; the message names file:line."""

    exit_status = 2

    def __init__(self, path: object, line: int | None, message: str) -> None:
        where = f"{_shown(path)}:{line}" if line else _shown(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class HostError(CcvmError):
    """The host lacks something needed: a binary, a package, a device."""

    exit_status = 3


class AssetError(HostError):
    """A guest asset could not be fetched, verified or built."""

    exit_status = 3


class WatchdogExpired(CcvmError):
    """The whole-run watchdog fired before all work finished."""

    exit_status = 124


class GuestNoExitStatus(CcvmError):
    """The guest stopped without reporting the program's exit status."""

    exit_status = 125


class Interrupted(CcvmError):
    """The run was stopped by a signal; children were killed."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}; all QEMU processes were stopped")
        self.exit_status = 128 + signum


class GuestError(Exception):
    """A guest-side failure: ``reason`` is one line, ``tail`` the console context."""

    def __init__(self, reason: str, *, tail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.tail = tail

    def __str__(self) -> str:
        return self.reason

    @property
    def details(self) -> str:
        """Everything known about the failure, for a report's details."""
        return self.tail or str(self)


class GuestFailure(GuestError):
    """The guest started and then failed: a panic, init's FAIL line, a timeout,
    QEMU exiting, the run being stopped.  ``output`` is what the program
    printed before it did."""

    def __init__(
        self, reason: str, *, tail: str = "", line_at: float | None = None, output: str = "", timed_out: bool = False
    ) -> None:
        super().__init__(reason, tail=tail)
        self.line_at = line_at  # monotonic time the failure line arrived, when one did
        self.output = output
        self.timed_out = timed_out  # the guest never got there: its deadline passed


class LaunchError(GuestError):
    """QEMU did not start.  ``argv`` is the command; ``output`` QEMU's own
    output, or None when the process never ran (as QEMU's VMLaunchFailure)."""

    def __init__(self, reason: str, *, argv: Sequence[str], output: str | None = None) -> None:
        super().__init__(reason)
        self.argv = tuple(argv)
        self.output = output

    def __str__(self) -> str:
        if self.output is None:
            return self.reason
        return f"{self.reason}\ncommand: {subprocess.list2cmdline(self.argv)}\noutput: {self.output or '(none)'}"


class ShuttingDown(OSError):
    """A child was started after the run began stopping; it was killed at once."""
