"""Bounds on what the matrix, the command line and the environment may ask
for, kept in one place so every parser refuses the same values."""

from __future__ import annotations

MAX_TIMEOUT_S = 7 * 24 * 3600.0  # a week: anything longer is a typo, and inf or nan would never end
MAX_CORES = 512  # vCPUs per guest
MAX_MEMORY_MIB = 1 << 20  # 1024G per guest


def parse_cores(raw: object) -> int:
    """A guest's vCPU count, from YAML, an option or a variable: 1 to MAX_CORES;
    ValueError with the one-line reason.  Every reader of a core count uses this."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError(f"{raw!r} is not a whole number")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a whole number") from None
    if not 1 <= value <= MAX_CORES:
        raise ValueError(f"must be from 1 to {MAX_CORES}")
    return value
