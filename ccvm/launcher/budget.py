"""How long a cell's boots may take: one function each, used by the boot
executor, the whole-run watchdog and CI generation alike."""

from __future__ import annotations

from ccvm.matrix.launcher import Launcher
from ccvm.matrix.model import Cell

RUN_SLACK_S = 120.0  # the whole-run watchdog's margin: probes, asset preparation, reporting


def boot_timeout_s(cell: Cell, launcher: Launcher, override_s: float | None = None) -> float:
    """One boot of one scenario: --timeout, else the launcher's boot timeout, else the cell's."""
    return override_s or launcher.boot.timeout_s or cell.settings.timeout_s


def attempt_budget_s(timeout_s: float, boots: int) -> float:
    """One attempt of a cell: its boots may run one after another when cores are short."""
    return timeout_s * max(1, boots)


def cell_budget_s(timeout_s: float, boots: int, retries: int) -> float:
    """Every attempt of a cell: the first and each retry."""
    return attempt_budget_s(timeout_s, boots) * (retries + 1)


def builds_budget_s(launcher: Launcher, build_timeout_s: float) -> float:
    """The launcher's builds, one per Nix system it declares a build step for."""
    return build_timeout_s * len(launcher.build)
