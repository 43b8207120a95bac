"""Bounds on what the matrix, the command line and the environment may ask
for, kept in one place so every parser refuses the same values."""

from __future__ import annotations

MAX_TIMEOUT_S = 7 * 24 * 3600.0  # a week: anything longer is a typo, and inf or nan would never end
MAX_CORES = 512  # vCPUs per guest
MAX_MEMORY_MIB = 1 << 20  # 1024G per guest
