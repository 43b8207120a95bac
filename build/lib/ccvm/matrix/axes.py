"""Axis values of the matrix, parsed in one place."""

from __future__ import annotations

import difflib
import enum
import platform


class Arch(enum.StrEnum):
    X86_64 = "x86_64"
    AARCH64 = "aarch64"

    @property
    def debian(self) -> str:
        """Debian's name for the architecture (``dpkg --print-architecture``)."""
        return {Arch.X86_64: "amd64", Arch.AARCH64: "arm64"}[self]

    @property
    def nix_system(self) -> str:
        return f"{self.value}-linux"


class Accel(enum.StrEnum):
    KVM = "kvm"
    TCG = "tcg"


class Machine(enum.StrEnum):
    Q35 = "q35"
    VIRT = "virt"


# The machine types each architecture boots on.  A cell pairing an
# architecture with any other machine is rejected when the matrix loads.
MACHINES_FOR_ARCH: dict[Arch, frozenset[Machine]] = {
    Arch.X86_64: frozenset({Machine.Q35}),
    Arch.AARCH64: frozenset({Machine.VIRT}),
}

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
    aliases = {"amd64": "x86_64", "arm64": "aarch64"}
    try:
        return Arch(aliases.get(machine, machine))
    except ValueError:
        return None
