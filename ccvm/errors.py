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
"""

from __future__ import annotations


class CcvmError(Exception):
    """Base class: a one-line message and an exit status."""

    exit_status = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


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
        where = f"{path}:{line}" if line else f"{path}"
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
