"""Each cell of a ``ccvm boot`` run, resolved once into a frozen job.

The command's options beat the launcher's declaration, which beats the
cell's settings in matrix/boot.yaml; that is decided here, once per cell,
and nothing after this looks at an option or a setting again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccvm.checks.boot.judge import case_names
from ccvm.launcher.budget import boot_timeout_s, cell_budget_s
from ccvm.launcher.resolve import LAUNCHER
from ccvm.matrix.axes import Accel
from ccvm.matrix.launcher import Launcher
from ccvm.matrix.launcher_boot import BootScenario
from ccvm.matrix.model import Cell
from ccvm.require import Requirements

# What a cell may find missing, by the names --require and --allow-missing take: QEMU itself, or its
# accelerator (a cell whose QEMU is missing lacks its accelerator too); or the project's launcher.
QEMU = "qemu"
BOOT_NEEDS = (*(str(accel) for accel in Accel), QEMU, LAUNCHER)

# Rough first-run estimates (seconds) for ordering, before any history exists.
DEFAULT_ESTIMATE = {Accel.TCG: 25.0, Accel.KVM: 5.0}


@dataclass(frozen=True, kw_only=True)
class BootOptions:
    """What the command line asks for; None: the matrix's setting."""

    cells: tuple[Cell, ...]
    jobs: int  # host cores the guests' vCPUs may use at once
    reports: Path
    timeout_s: float | None = None  # per boot
    retries: int | None = None
    requirements: Requirements = Requirements()  # --require kvm, CI: an unusable accelerator or QEMU fails
    run_timeout_s: float | None = None  # whole-run watchdog; None: computed
    memory_mib: int | None = None
    cores: int | None = None
    reprobe: bool = False  # ignore a remembered KVM probe result
    undeclared: str = (
        ""  # why the launcher under test is not the project's (launcher.resolve.undeclared): no cell boots
    )


@dataclass(frozen=True, kw_only=True)
class CellJob:
    """Everything one cell's boots need, decided."""

    cell: Cell
    launcher: Launcher
    scenarios: tuple[BootScenario, ...]
    timeout_s: float  # one boot
    cores: int  # the guest's vCPUs, and the host cores its boot holds
    memory_mib: int
    retries: int
    log_dir: Path  # reports/boot/CELL; attempt-N/SCENARIO under it
    requirements: Requirements  # whether a missing QEMU or unusable accelerator fails the cell or skips it
    estimate_s: float  # how long it took last time, for the order boots get cores in

    @property
    def suite_name(self) -> str:
        return f"boot.{self.cell.id}"

    @property
    def case_names(self) -> tuple[str, ...]:
        return tuple(name for scenario in self.scenarios for name in case_names(scenario))

    @property
    def budget_s(self) -> float:
        """The longest all its attempts can take."""
        return cell_budget_s(self.timeout_s, len(self.scenarios), self.retries)


def resolve_job(cell: Cell, launcher: Launcher, options: BootOptions, history: dict[str, float]) -> CellJob:
    return CellJob(
        cell=cell,
        launcher=launcher,
        scenarios=launcher.boot.scenarios,
        timeout_s=boot_timeout_s(cell, launcher, options.timeout_s),
        cores=options.cores or cell.settings.cores,
        memory_mib=options.memory_mib or cell.settings.memory_mib,
        retries=options.retries if options.retries is not None else cell.settings.retries,
        log_dir=options.reports / "boot" / cell.id,
        requirements=options.requirements,
        estimate_s=history.get(cell.id, DEFAULT_ESTIMATE[cell.accel]),
    )


def resolve_jobs(launcher: Launcher, options: BootOptions, history: dict[str, float]) -> tuple[CellJob, ...]:
    """The selected cells' jobs, in the order they were asked for."""
    return tuple(resolve_job(cell, launcher, options, history) for cell in options.cells)
