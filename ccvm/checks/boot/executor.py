"""The boot matrix's one executor, for every kind of launcher.

``run_boot`` resolves each selected cell into a job (ccvm.checks.boot.job),
picks how the launcher under test is run (ccvm.launcher.boot.runner_for:
the only place the kind of launcher matters), and runs the cells under a
whole-run watchdog.  For each cell: skip it when QEMU or its accelerator is
unusable, prepare the launcher once (its build, ccvm's guest), then attempt
until a pass or the retries are used up.  An attempt boots every scenario,
each in its own thread and fresh box once the core budget gives it host
cores (``CoreBudget``: boots, not cells, are scheduled; longest first), and
judges each boot (ccvm.checks.boot.judge).  Everything comes back as return
values (``CellResult``); the suites are made from them (``cell_suite``).

Stopping has one path, ``BootExecutor.stop``: no boot starts any more, the
running ones see the run's ``cancelled`` event, and every child process is
killed (``processes.begin_shutdown``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ccvm import processes
from ccvm.checks.boot.cells import CellResult, cell_suite
from ccvm.checks.boot.cores import Cancelled, CoreBudget
from ccvm.checks.boot.job import QEMU, BootOptions, CellJob, resolve_jobs
from ccvm.checks.boot.judge import judge, not_run
from ccvm.checks.boot.retries import Attempt, wants_another
from ccvm.errors import Interrupted
from ccvm.files import cache_root, write_atomic
from ccvm.guest.assets import AssetStore
from ccvm.launcher.boot import BootRequest, LauncherRun, LaunchResult, Prepared, runner_for
from ccvm.launcher.budget import RUN_SLACK_S, builds_budget_s
from ccvm.launcher.resolve import LAUNCHER
from ccvm.matrix.axes import Accel
from ccvm.matrix.launcher import Launcher
from ccvm.matrix.launcher_boot import BootScenario
from ccvm.matrix.model import Cell
from ccvm.qemu.probe import KvmProbe, qemu_info
from ccvm.report.progress import Progress
from ccvm.report.results import Case, Suite


@dataclass(kw_only=True)
class BootRun:
    suites: list[Suite] = field(default_factory=list)
    watchdog_expired: bool = False
    interrupted: Interrupted | None = None  # the signal that stopped the run, re-raised after reporting


def write_prepared(share: Path, scenario: BootScenario) -> None:
    """The scenario's `prepare` files, written into the shared directory before the boot."""
    share.mkdir(parents=True, exist_ok=True)
    for name, content in scenario.prepare.items():
        (share / name).parent.mkdir(parents=True, exist_ok=True)
        (share / name).write_text(content, encoding="utf-8")


class BootExecutor:
    def __init__(self, runner: LauncherRun, probe: KvmProbe, *, jobs: int, undeclared: str = "") -> None:
        self.runner, self.probe = runner, probe
        self.undeclared = undeclared
        self.budget = CoreBudget(jobs)
        self.cancelled = threading.Event()  # set when the run stops: no boot starts, running ones end

    def cancel(self) -> None:
        """No boot starts from now on; running ones see ``cancelled``."""
        self.cancelled.set()
        self.budget.cancel()

    def stop(self) -> None:
        """The one way a run is stopped (the watchdog, a signal): cancel, and kill every child process."""
        self.cancel()
        processes.begin_shutdown()

    def unavailable(self, cell: Cell) -> tuple[str, tuple[str, ...]]:
        """Why the cell cannot boot here, and what is missing by the names --require takes; ("", ()) if it can."""
        if self.undeclared:
            return self.undeclared, (LAUNCHER,)
        info = qemu_info(cell.arch)
        if info.path is None:
            return info.missing_reason, (QEMU, str(cell.accel))
        if cell.accel is Accel.KVM:
            result = self.probe.result(cell.arch)
            if not result.usable:
                return result.reason, (str(cell.accel),)
        return "", ()

    def run(self, job: CellJob) -> CellResult:
        started = time.monotonic()
        shutil.rmtree(job.log_dir, ignore_errors=True)  # no stale attempts
        reason, missing = self.unavailable(job.cell)
        if reason:
            return CellResult(job=job, unavailable=reason, missing=missing, seconds=time.monotonic() - started)
        prepared = self.runner.prepare(job.cell)
        attempts: list[Attempt] = []
        launches: tuple[LaunchResult, ...] = ()
        while wants_another([a.outcome for a in attempts], retries=job.retries, cancelled=self.cancelled.is_set()):
            attempt, launches = self._attempt(job, prepared, len(attempts) + 1)
            attempts.append(attempt)
        return CellResult(
            job=job,
            attempts=tuple(attempts),
            launches=launches,
            prepared=prepared,
            seconds=time.monotonic() - started,
        )

    def _attempt(self, job: CellJob, prepared: Prepared, number: int) -> tuple[Attempt, tuple[LaunchResult, ...]]:
        log_dir = job.log_dir / f"attempt-{number}"
        if prepared.problem:
            cases = [c for s in job.scenarios for c in not_run(s, prepared.problem, prepared.details)]
            return Attempt(number=number, log_dir=log_dir, cases=tuple(cases)), ()
        with concurrent.futures.ThreadPoolExecutor(
            len(job.scenarios), thread_name_prefix=f"ccvm-{job.cell.id}"
        ) as pool:
            futures = [pool.submit(self._boot, job, prepared, s, log_dir / s.name) for s in job.scenarios]
            done = [future.result() for future in futures]  # the declared order, whichever boot ends first
        cases = tuple(case for boot_cases, _ in done for case in boot_cases)
        launches = tuple(launch for _, launch in done if launch is not None)
        return Attempt(number=number, log_dir=log_dir, cases=cases), launches

    def _boot(
        self, job: CellJob, prepared: Prepared, scenario: BootScenario, log_dir: Path
    ) -> tuple[list[Case], LaunchResult | None]:
        """Boot the scenario once the budget gives it host cores, and judge it."""
        with tempfile.TemporaryDirectory(prefix=f"ccvm-boot-{job.cell.id}-") as parent:
            box = Path(parent)
            write_prepared(box / "share", scenario)
            request = BootRequest(
                cell=job.cell,
                scenario=scenario,
                box=box,
                timeout_s=job.timeout_s,
                cores=job.cores,
                memory_mib=job.memory_mib,
                log_dir=log_dir,
                cancelled=self.cancelled,
            )
            try:
                with self.budget.held(job.cores, estimate_s=job.estimate_s):
                    if self.cancelled.is_set():
                        raise Cancelled
                    result = self.runner.boot(prepared, request)
            except Cancelled:
                return not_run(scenario, f"{scenario.name} boot: run stopped before it started"), None
            return judge(scenario, result, request.share), result


# -- ordering and history -----------------------------------------------------


def _history_path() -> Path:
    return cache_root() / "boot-times.json"


def load_history() -> dict[str, float]:
    try:
        data = json.loads(_history_path().read_text())
        return {str(k): float(v) for k, v in data.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def save_history(history: dict[str, float]) -> None:
    with contextlib.suppress(OSError):  # ordering is an optimisation; never fail a run over it
        write_atomic(_history_path(), json.dumps(history, sort_keys=True).encode())


def run_budget_s(jobs: tuple[CellJob, ...], builds_s: float) -> float:
    """The whole-run watchdog: every attempt of every cell one after another, the builds, and slack."""
    return sum(job.budget_s for job in jobs) + builds_s + RUN_SLACK_S


# -- the run ----------------------------------------------------------------------


def run_boot(
    launcher: Launcher,
    root: Path,
    options: BootOptions,
    store: AssetStore,
    progress: Progress,
    *,
    build_timeout_s: float,
) -> BootRun:
    """Boot the selected cells through the launcher under test (its paths relative to ``root``)."""
    history = load_history()
    jobs = resolve_jobs(launcher, options, history)
    runner = runner_for(
        launcher, root=root, store=store, build_timeout_s=build_timeout_s, log_dir=options.reports / "boot"
    )
    probe = KvmProbe(store.for_arch, log_root=options.reports / "boot", reprobe=options.reprobe)
    executor = BootExecutor(runner, probe, jobs=options.jobs, undeclared=options.undeclared)
    watchdog = options.run_timeout_s or run_budget_s(jobs, builds_budget_s(launcher, build_timeout_s))
    results, run = _run_cells(executor, jobs, watchdog, progress)
    for result, _ in results.values():
        if result.passed:
            history[result.job.cell.id] = result.seconds
    save_history(history)
    run.suites = [results[job.cell.id][1] for job in jobs]
    return run


Reported = tuple[CellResult, Suite]


def _run_cells(
    executor: BootExecutor, jobs: tuple[CellJob, ...], watchdog: float, progress: Progress
) -> tuple[dict[str, Reported], BootRun]:
    """Every job in a thread of its own (the core budget, not the pool, bounds how many
    guests run at once), longest first, until they end or the watchdog or a signal stops them."""
    run = BootRun()
    deadline = time.monotonic() + watchdog

    def work(job: CellJob) -> Reported:
        progress.started(job.suite_name, "booting")
        result = executor.run(job)
        suite = cell_suite(result)
        progress.finished(suite, result.seconds)
        return result, suite

    ordered = sorted(jobs, key=lambda job: -job.estimate_s)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(ordered)), thread_name_prefix="ccvm-cell")
    futures = {pool.submit(work, job): job for job in ordered}
    stopped_because = f"run watchdog expired after {watchdog:g}s"
    results: dict[str, Reported] = {}
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
            executor.stop()
            for future in pending:
                future.cancel()
            concurrent.futures.wait(pending, timeout=30)  # their processes are gone; let the workers finish
        for future, job in futures.items():
            if future in done and future.exception() is None:
                results[job.cell.id] = future.result()
            elif future in done and not isinstance(future.exception(), Interrupted):
                raise future.exception()  # a bug in a worker surfaces here
            else:
                stopped = CellResult(job=job, stopped=stopped_because)
                results[job.cell.id] = (stopped, cell_suite(stopped))
    finally:
        executor.cancel()
        processes.stop_all()
        pool.shutdown(wait=False, cancel_futures=True)
    return results, run
