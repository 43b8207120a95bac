"""Does a guest run under an accelerator at all?  Decided by the earliest
sign of life: the kernel's first console line ("Linux version ..."), which
a working KVM prints well under a second after QEMU starts.

Any byte is not enough: on x86 the bzImage's real-mode setup code prints
("Probing EDD") before the kernel proper runs, and a host whose KVM cannot
enter long mode gets that far and then hangs.  A guest that shows no line
within the bound, or a QEMU that exits first (e.g. "failed to set MSR
0x10a"), says the accelerator does not work here.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ccvm import processes
from ccvm.matrix.axes import Accel, Arch, Machine
from ccvm.qemu.argv import sign_of_life_argv
from ccvm.text import last_line

SIGN_OF_LIFE_TIMEOUT_S = 4.0  # a working KVM prints in well under 1 s; the whole probe stays under 5 s
FIRST_KERNEL_LINE = b"Linux version"


@dataclass(frozen=True, kw_only=True)
class SignOfLife:
    alive: bool
    reason: str  # what was seen, or why nothing was
    seconds: float  # QEMU start to the decision


def sign_of_life(
    *,
    arch: Arch,
    accel: Accel,
    machine: Machine,
    kernel: Path,
    log_dir: Path,
    timeout_s: float = SIGN_OF_LIFE_TIMEOUT_S,
) -> SignOfLife:
    """Start the kernel under ``accel`` and wait at most ``timeout_s`` for its
    first console line; QEMU is stopped as soon as it is decided."""
    argv = sign_of_life_argv(arch=arch, accel=accel, machine=machine, kernel=kernel)
    log_dir.mkdir(parents=True, exist_ok=True)
    label = str(accel).upper()
    started = time.monotonic()
    with (log_dir / "qemu.log").open("wb") as qemu_log:
        try:
            proc = processes.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=qemu_log)
        except OSError as exc:
            return SignOfLife(alive=False, reason=f"cannot start {argv[0]}: {exc}", seconds=0.0)
        try:
            seen, ended = _read_until_line(proc, started + timeout_s)
        finally:
            status = processes.stop(proc, term_grace_s=0)
            proc.stdout.close()
    seconds = time.monotonic() - started
    (log_dir / "console.log").write_bytes(seen)
    if FIRST_KERNEL_LINE in seen:
        return SignOfLife(
            alive=True, reason=f"the kernel printed its first line under {label} in {seconds:.2f}s", seconds=seconds
        )
    if ended:
        last = _last_line(log_dir / "qemu.log")
        return SignOfLife(
            alive=False,
            reason=f"QEMU exited (status {status}) before the kernel printed a line: {last}",
            seconds=seconds,
        )
    hint = " (/dev/kvm opens, but the guest hangs)" if accel is Accel.KVM else ""
    return SignOfLife(alive=False, reason=f"no kernel console line within {timeout_s:g}s{hint}", seconds=seconds)


def _read_until_line(proc: subprocess.Popen, deadline: float) -> tuple[bytes, bool]:
    """The serial output up to the first kernel line, the deadline, or EOF;
    and whether QEMU closed its output (exited)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    while FIRST_KERNEL_LINE not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return seen, False
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return seen, True
        seen += chunk
    return seen, False


def _last_line(path: Path) -> str:
    try:
        return last_line(path.read_text(errors="replace")).strip()
    except OSError:
        return last_line("")
