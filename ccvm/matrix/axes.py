"""Axis values of the matrix, parsed in one place, and the one table of
what each architecture is (``ARCH_FACTS``): its QEMU, machines, console,
CPU, kernel image, Nix system and Debian names.  Every other module asks
this table; none keeps a per-arch dict of its own."""

from __future__ import annotations

import difflib
import enum
import platform
from dataclasses import dataclass


class Arch(enum.StrEnum):
    X86_64 = "x86_64"
    AARCH64 = "aarch64"

    @property
    def facts(self) -> ArchFacts:
        return ARCH_FACTS[self]

    @property
    def debian(self) -> str:
        """Debian's name for the architecture (``dpkg --print-architecture``)."""
        return self.facts.debian

    @property
    def nix_system(self) -> str:
        return self.facts.nix_system


class Accel(enum.StrEnum):
    KVM = "kvm"
    TCG = "tcg"


class Machine(enum.StrEnum):
    Q35 = "q35"
    VIRT = "virt"


@dataclass(frozen=True, kw_only=True)
class ArchFacts:
    """What one architecture is, to QEMU, the kernel, Nix and Debian."""

    machines: frozenset[Machine]  # the machine types it boots on; a cell with another is rejected
    default_machine: Machine  # `ccvm vm`'s default, the probes' machine, init's cells
    qemu_binary: str
    qemu_package: str  # the Debian package with qemu_binary
    kernel_console: str  # the serial console the kernel writes to
    early_console: str  # the kernel's earliest console (the KVM probe's sign of life)
    tcg_cpu: str  # -cpu under TCG (measured: bench/boot_bench.py --sweep)
    kernel_image: str  # the kernel image file a kernel package or derivation installs
    quick_start: tuple[str, ...]  # kernel arguments that skip start-up work the stub guest has no use for
    nix_system: str
    debian: str  # dpkg --print-architecture


# quick_start, measured under TCG on 2 cores (bench/boot_bench.py, docs: Performance):
# skipping the crypto self-tests and audit saves about 0.25 s on aarch64 (1.45 -> 1.20 s);
# with the i8042 probe (there is no keyboard), the TSC watchdog and SMP alternatives
# patching (one vCPU) skipped as well, about 0.3 s on x86_64 (2.06 -> 1.74 s).  CPU
# vulnerability mitigations stay on.
ARCH_FACTS: dict[Arch, ArchFacts] = {
    Arch.X86_64: ArchFacts(
        machines=frozenset({Machine.Q35}),
        default_machine=Machine.Q35,
        qemu_binary="qemu-system-x86_64",
        qemu_package="qemu-system-x86",
        kernel_console="ttyS0",
        early_console="earlyprintk=serial,ttyS0,115200",
        tcg_cpu="max",
        kernel_image="bzImage",
        quick_start=(
            "cryptomgr.notests",
            "audit=0",
            "i8042.noaux",
            "i8042.nomux",
            "i8042.nopnp",
            "i8042.dumbkbd",
            "tsc=reliable",
            "no_timer_check",
            "noreplace-smp",
        ),
        nix_system="x86_64-linux",
        debian="amd64",
    ),
    Arch.AARCH64: ArchFacts(
        machines=frozenset({Machine.VIRT}),
        default_machine=Machine.VIRT,
        qemu_binary="qemu-system-aarch64",
        qemu_package="qemu-system-arm",
        kernel_console="ttyAMA0",
        early_console="earlycon",
        tcg_cpu="cortex-a57",
        kernel_image="Image",
        quick_start=("cryptomgr.notests", "audit=0"),
        nix_system="aarch64-linux",
        debian="arm64",
    ),
}

# The machine types each architecture boots on (from ARCH_FACTS).
MACHINES_FOR_ARCH: dict[Arch, frozenset[Machine]] = {arch: facts.machines for arch, facts in ARCH_FACTS.items()}


def arch_of_nix_system(system: str) -> Arch | None:
    return next((arch for arch, facts in ARCH_FACTS.items() if facts.nix_system == system), None)


AXES: dict[str, type[enum.StrEnum]] = {"arch": Arch, "accel": Accel, "machine": Machine}


def suggestion(word: str, choices: list[str]) -> str:
    """A ' (did you mean X?)' hint, or '' when nothing is close."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_axis_value(axis: str, raw: object) -> enum.StrEnum:
    """Parse one axis value; ValueError carries the one-line reason."""
    enum_type = AXES[axis]
    text = str(raw)
    try:
        return enum_type(text)
    except ValueError:
        choices = [member.value for member in enum_type]
        raise ValueError(
            f"unknown {axis} {text!r}{suggestion(text, choices)}; choose one of: {', '.join(choices)}"
        ) from None


def host_arch() -> Arch | None:
    """The host's architecture as an Arch, or None when it is neither."""
    machine = platform.machine().lower()
    return next((arch for arch in Arch if machine in (arch.value, arch.facts.debian)), None)
