"""Memory sizes as QEMU takes them: 512M, 1G, 2048 (MiB)."""

from __future__ import annotations

import re

from ccvm.matrix.limits import MAX_MEMORY_MIB

_SIZE = re.compile(r"^\s*(\d+)\s*([MmGg])?(?:i?[Bb])?\s*$")


def parse_mib(text: object) -> int:
    """Parse a size into MiB; ValueError with a one-line reason."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size; write it like 512M or 2G")
    number, unit = int(match.group(1)), (match.group(2) or "M").upper()
    mib = number * 1024 if unit == "G" else number
    if mib < 64:
        raise ValueError(f"{text!r} is too small; the guest needs at least 64M")
    if mib > MAX_MEMORY_MIB:
        raise ValueError(f"{text!r} is more than 1024G; QEMU would refuse it")
    return mib
