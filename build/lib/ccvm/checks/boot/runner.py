"""The boot matrix: boot the stub guest on every selected cell under a
whole-run watchdog.  Boots, not cells, are scheduled: every boot of every
cell (a cell's overlay and writable boots run side by side) takes as many
host cores from one budget (--jobs, default the cores ccvm may use) as its
guest has vCPUs, and when cores free up the longest boot goes first."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ccvm import processes
from ccvm.checks.boot.cores import Cancelled, CoreBudget
from ccvm.checks.boot.declared import declared_boot
from ccvm.checks.boot.retries import combine, wants_another
from ccvm.checks.boot.scenarios import (
    CASE_NAMES,
    BootPlan,
    Evidence,
    Scenario,
    boot_plans,
    probe_text,
    write_prepared,
)
from ccvm.errors import GuestError, Interrupted
from ccvm.files import cache_root, write_atomic
from ccvm.guest.assets import AssetStore
from ccvm.matrix.axes import Accel
from ccvm.matrix.model import Cell, Matrix
from ccvm.qemu.guestrun import run_guest
from ccvm.qemu.launch import GuestRequest
from ccvm.qemu.probe import KvmProbe, qemu_info
from ccvm.report.progress import Progress
from ccvm.report.results import Case, Outcome, Suite

# Rough first-run estimates (seconds) for ordering, before any history exists.
DEFAULT_ESTIMATE = {"tcg": 25.0, "kvm": 5.0}


@dataclass(frozen=True, kw_only=True)
class BootOptions:
    cells: tuple[Cell, ...]
    jobs: int  # host cores the guests' vCPUs may use at once
    reports: Path
    timeout_s: float | None = None  # per boot attempt; None: the cell's setting
    retries: int | None = None  # None: the cell's setting
    require_accel: frozenset[Accel] = frozenset()
    run_timeout_s: float | None = None  # whole-run watchdog; None: computed
    memory_mib: int | None = None
    cores: int | None = None
    reprobe: bool = False  # ignore a remembered KVM probe result


@dataclass(kw_only=True)
class BootRun:
    suites: list[Suite] = field(default_factory=list)
    watchdog_expired: bool = False
    interrupted: Interrupted | None = None  # the signal that stopped the run, re-raised after reporting


def suite_name(cell: Cell) -> str:
    return f"boot.{cell.id}"


def failed_suite(
    cell: Cell, message: str, outcome: Outcome = Outcome.FAIL, *, names: tuple[str, ...] = CASE_NAMES, **suite_fields
) -> Suite:
    """Every case of the cell with one outcome and message (unavailable, stopped)."""
    cases = [Case(name=name, outcome=outcome, message=message) for name in names]
    return Suite(name=suite_name(cell), cases=cases, **suite_fields)


def _skipped(cell: Cell, reason: str, required: bool, names: tuple[str, ...]) -> Suite:
    if required:
        message = f"required accelerator unavailable: {reason}"
        return failed_suite(cell, message, names=names, properties={"accel": "none"})
    return failed_suite(cell, reason, Outcome.SKIP, names=names, properties={"accel": "none"})


def judge(scenario: Scenario, evidence: Evidence) -> Case:
    """One scenario's case from what the boot showed."""
    problem = scenario.check(evidence)
    run = evidence.run
    return Case(
        name=scenario.name,
        outcome=Outcome.FAIL if problem else Outcome.PASS,
        seconds=run.seconds,
        message=problem or "",
        details=run.agent_text if problem else "",
        output=run.agent_text,
    )


def boot_failed(plan: BootPlan, exc: GuestError, seconds: float, log_dir: Path) -> list[Case]:
    """The plan's cases when its boot itself failed."""
    return [
        Case(
            name=scenario.name,
            outcome=Outcome.FAIL,
            seconds=seconds,
            message=f"{plan.name} boot: {exc.reason}",
            details=exc.details,
            output=_log_text(log_dir),
        )
        for scenario in plan.scenarios
    ]


class CellRunner:
    def __init__(
        self,
        matrix: Matrix,
        options: BootOptions,
        store: AssetStore,
        probe: KvmProbe,
        *,
        estimates: dict[str, float] | None = None,
    ) -> None:
        self.matrix, self.options, self.store, self.probe = matrix, options, store, probe
        self.cancelled = threading.Event()  # set by the watchdog or a signal: start no new boot
        self.budget = CoreBudget(options.jobs)
        self.estimates = estimates or {}  # seconds per cell, for the order boots get cores in
        # A launcher declared in matrix/launcher.yaml boots through its own executor, in the same budget.
        self.declared = declared_boot(
            matrix,
            store=store,
            reports=options.reports,
            timeout_s=options.timeout_s,
            cancelled=self.cancelled,
            slot=self._slot,
        )
        self.case_names = self.declared.case_names if self.declared else CASE_NAMES

    def _slot(self, cell: Cell):
        """Host cores for one boot of the cell (raises Cancelled when the run stops)."""
        estimate = self.estimates.get(cell.id, DEFAULT_ESTIMATE[str(cell.accel)])
        return self.budget.held(self.options.cores or cell.settings.cores, estimate_s=estimate)

    def attempt_seconds(self, cell: Cell) -> float:
        """The longest one attempt of the cell can take."""
        if self.declared:
            return self.declared.attempt_seconds()
        return (self.options.timeout_s or cell.settings.timeout_s) * 2

    def cancel(self) -> None:
        self.cancelled.set()
        self.budget.cancel()

    def unavailable(self, cell: Cell) -> str | None:
        info = qemu_info(cell.arch)
        if info.path is None:
            return info.missing_reason
        if cell.accel is Accel.KVM:
            result = self.probe.result(cell.arch)
            if not result.usable:
                return result.reason
        return None

    def run(self, cell: Cell) -> Suite:
        shutil.rmtree(self.options.reports / "boot" / cell.id, ignore_errors=True)  # no stale attempts
        reason = self.unavailable(cell)
        if reason:
            return _skipped(cell, reason, cell.accel in self.options.require_accel, self.case_names)
        retries = self.options.retries if self.options.retries is not None else cell.settings.retries
        attempts: list[Suite] = []
        while wants_another([a.outcome for a in attempts], retries=retries, cancelled=self.cancelled.is_set()):
            attempts.append(self._attempt(cell, len(attempts) + 1))
        return combine(attempts)

    def _request(self, cell: Cell, plan: BootPlan, share: Path) -> GuestRequest:
        return GuestRequest(
            arch=cell.arch,
            accel=cell.accel,
            machine=cell.machine,
            memory_mib=self.options.memory_mib or cell.settings.memory_mib,
            cores=self.options.cores or cell.settings.cores,
            program=plan.program,
            env=plan.env,
            share_dir=share,
            share_writable=plan.writable,
        )

    def _attempt(self, cell: Cell, attempt: int) -> Suite:
        if self.declared:
            return self.declared.attempt(cell, attempt, suite_name=suite_name(cell))
        assets = self.store.for_arch(cell.arch)
        log_root = self.options.reports / "boot" / cell.id / f"attempt-{attempt}"
        shutil.rmtree(log_root, ignore_errors=True)
        suite = Suite(
            name=suite_name(cell),
            log_path=str(log_root / "overlay" / "console.log"),
            properties={
                "accel": str(cell.accel),
                "machine": str(cell.machine),
                "kernel": assets.kernel_source.what,
                "kernel_sha256": assets.kernel_source.sha256,
            },
        )
        if assets.notes:
            suite.properties["asset_notes"] = "; ".join(assets.notes)
        token = secrets.token_hex(8)
        plans = boot_plans(token)
        with concurrent.futures.ThreadPoolExecutor(len(plans), thread_name_prefix=f"ccvm-{cell.id}") as boots:
            futures = [boots.submit(self._boot_in_share, cell, plan, token, log_root, suite) for plan in plans]
            for future in futures:  # cases in the plans' order, whichever boot ends first
                suite.cases += future.result()
        return suite

    def _boot_in_share(self, cell: Cell, plan: BootPlan, token: str, log_root: Path, suite: Suite) -> list[Case]:
        share = Path(tempfile.mkdtemp(prefix=f"ccvm-share-{cell.id}-"))
        try:
            write_prepared(share, plan.boot)
            return self._boot(cell, plan, share, probe_text(token), log_root / plan.name, suite)
        finally:
            shutil.rmtree(share, ignore_errors=True)

    def _boot(self, cell: Cell, plan: BootPlan, share: Path, text: str, log_dir: Path, suite: Suite) -> list[Case]:
        request = self._request(cell, plan, share)
        try:
            with self._slot(cell):
                if self.cancelled.is_set():
                    raise Cancelled
                return self._run_boot(cell, plan, request, share, text, log_dir, suite)
        except Cancelled:
            message = f"{plan.name} boot: run stopped before it started"
            return [Case(name=scenario.name, outcome=Outcome.FAIL, message=message) for scenario in plan.scenarios]

    def _run_boot(
        self, cell: Cell, plan: BootPlan, request: GuestRequest, share: Path, text: str, log_dir: Path, suite: Suite
    ) -> list[Case]:
        timeout = self.options.timeout_s or cell.settings.timeout_s
        started = time.monotonic()
        try:
            run = run_guest(request, self.store.for_arch(cell.arch), log_dir=log_dir, timeout_s=timeout)
        except GuestError as exc:
            return boot_failed(plan, exc, time.monotonic() - started, log_dir)
        if plan.name == "overlay":
            suite.properties["qemu_argv"] = json.dumps(list(run.qemu_argv))
            suite.properties["boot_seconds"] = f"{run.seconds:.1f}"
        evidence = Evidence(run=run, plan=plan, share=share, probe_text=text)
        return [judge(scenario, evidence) for scenario in plan.scenarios]


def _log_text(log_dir: Path) -> str:
    parts = []
    for name in ("console.log", "agent.log", "control.log", "qemu.log"):
        path = log_dir / name
        if path.is_file():
            parts.append(f"--- {name} ---\n{path.read_text(errors='replace')}")
    return "\n".join(parts)


# -- ordering and history -----------------------------------------------------


def _history_path() -> Path:
    return cache_root() / "boot-times.json"


def _load_history() -> dict[str, float]:
    try:
        data = json.loads(_history_path().read_text())
        return {str(k): float(v) for k, v in data.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def _save_history(history: dict[str, float]) -> None:
    with contextlib.suppress(OSError):  # ordering is an optimisation; never fail a run over it
        write_atomic(_history_path(), json.dumps(history, sort_keys=True).encode())


def longest_first(cells: tuple[Cell, ...], history: dict[str, float]) -> list[Cell]:
    return sorted(cells, key=lambda c: -history.get(c.id, DEFAULT_ESTIMATE[str(c.accel)]))


def default_run_timeout(
    options: BootOptions, attempt_seconds: Callable[[Cell], float] | None = None, extra_s: float = 0.0
) -> float:
    """Enough for every attempt of every cell run one after another, plus probes (and ``extra_s``)."""
    total = extra_s
    for cell in options.cells:
        retries = options.retries if options.retries is not None else cell.settings.retries
        once = attempt_seconds(cell) if attempt_seconds else (options.timeout_s or cell.settings.timeout_s) * 2
        total += once * (retries + 1)
    return total + 120.0


def run_boot(matrix: Matrix, options: BootOptions, store: AssetStore, progress: Progress) -> BootRun:
    probe = KvmProbe(store.for_arch, log_root=options.reports / "boot", reprobe=options.reprobe)
    history = _load_history()
    runner = CellRunner(matrix, options, store, probe, estimates=dict(history))
    ordered = longest_first(options.cells, history)
    builds_s = runner.declared.builds_seconds() if runner.declared else 0.0
    watchdog = options.run_timeout_s or default_run_timeout(options, runner.attempt_seconds, builds_s)
    deadline = time.monotonic() + watchdog
    results: dict[str, Suite] = {}
    run = BootRun()

    def work(cell: Cell) -> Suite:
        progress.started(suite_name(cell), "booting")
        began = time.monotonic()
        suite = runner.run(cell)
        progress.finished(suite, time.monotonic() - began)
        if suite.outcome is Outcome.PASS and "boot_seconds" in suite.properties:
            history[cell.id] = time.monotonic() - began
        return suite

    # A thread per cell: the core budget, not the pool, bounds how many guests run at once.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(ordered)), thread_name_prefix="ccvm-cell")
    futures = {pool.submit(work, cell): cell for cell in ordered}
    stopped_because = f"run watchdog expired after {watchdog:g}s"
    try:
        try:
            done, pending = concurrent.futures.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        except Interrupted as exc:
            run.interrupted = exc
            stopped_because = str(exc)
            done = {f for f in futures if f.done()}  # what finished before the signal stands
            pending = set(futures) - done
        if pending:
            run.watchdog_expired = run.interrupted is None
            runner.cancel()
            processes.begin_shutdown()
            for future in pending:
                future.cancel()
            concurrent.futures.wait(pending, timeout=30)  # their QEMUs are gone; let the workers finish
        for future, cell in futures.items():
            if future in done and future.exception() is None:
                results[cell.id] = future.result()
            elif future in done and not isinstance(future.exception(), Interrupted):
                raise future.exception()  # a bug in a worker surfaces here
            else:
                results[cell.id] = failed_suite(cell, stopped_because, names=runner.case_names)
    finally:
        runner.cancel()
        processes.stop_all()
        pool.shutdown(wait=False, cancel_futures=True)
    _save_history(history)
    run.suites = [results[cell.id] for cell in options.cells]
    return run
