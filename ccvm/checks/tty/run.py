"""The terminal check: each tty scenario of the launcher under test, on
each selected cell, under a pseudo-terminal; each step a JUnit case, and
the launcher's exit status one more.

A step resizes the terminal (first), sends its keys, then waits until the
screen shows every line it expects, within its timeout.  After a step
fails, the later ones are not taken (they fail as not run: the session is
no longer where they expect it), and the launcher is stopped.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ccvm.checks.tty.screen import PtyScreen
from ccvm.launcher.boot import BootRequest, LauncherRun, Prepared, tty_boot_scenario
from ccvm.launcher.budget import boot_timeout_s
from ccvm.matrix.axes import Accel
from ccvm.matrix.launcher import Launcher
from ccvm.matrix.launcher_tty import CURSOR, EXIT_CASE, ScreenLine, TtyScenario, TtyStep
from ccvm.matrix.model import Cell
from ccvm.qemu.probe import KvmProbe, qemu_info
from ccvm.report.results import Case, Outcome, Suite


@dataclass(frozen=True, kw_only=True)
class TtyJob:
    cell: Cell
    scenario: TtyScenario
    timeout_s: float  # handed to the launcher (ccvm vm's --timeout); the steps have their own
    cores: int
    memory_mib: int
    log_dir: Path

    @property
    def suite_name(self) -> str:
        return f"tty.{self.cell.id}.{self.scenario.name}"


def _holds(screen: PtyScreen, want: ScreenLine) -> bool:
    lines = screen.lines()
    if want.line is None:
        return any(want.pattern.search(line) for line in lines)
    if want.line == CURSOR:
        index = screen.screen.cursor.y
    else:
        index = want.line - 1 if want.line > 0 else len(lines) + want.line
    return 0 <= index < len(lines) and want.pattern.search(lines[index]) is not None


def _missing(screen: PtyScreen, step: TtyStep) -> list[ScreenLine]:
    return [want for want in step.expect if not _holds(screen, want)]


def take_step(screen: PtyScreen, step: TtyStep) -> Case:
    started = time.monotonic()
    if step.pause_s:
        screen.wait_until(lambda: False, step.pause_s)
    if step.resize is not None:
        screen.resize(*step.resize)
    if step.send:
        screen.send(step.send)
    ok = screen.wait_until(lambda: not _missing(screen, step), step.timeout_s)
    seconds = time.monotonic() - started
    if ok:
        return Case(name=step.name, outcome=Outcome.PASS, seconds=seconds)
    missing = "; ".join(want.describe() for want in _missing(screen, step))
    why = "the launcher ended" if screen.ended else f"not within {step.timeout_s:g}s"
    size = f"{screen.screen.lines}x{screen.screen.columns}"
    return Case(
        name=step.name,
        outcome=Outcome.FAIL,
        seconds=seconds,
        message=f"the screen shows no {missing} ({why})",
        details=f"--- the screen ({size}, rows x columns) ---\n{screen.dump()}",
    )


def _exit_case(screen: PtyScreen, scenario: TtyScenario) -> Case:
    started = time.monotonic()
    status = screen.wait_exit(scenario.exit_timeout_s)
    seconds = time.monotonic() - started
    if status == scenario.exit_status:
        return Case(name=EXIT_CASE, outcome=Outcome.PASS, seconds=seconds)
    if status is None:
        message = f"the launcher did not exit within {scenario.exit_timeout_s:g}s after the last step; it was stopped"
    else:
        message = f"the launcher exited with status {status}, expected {scenario.exit_status}"
    return Case(name=EXIT_CASE, outcome=Outcome.FAIL, seconds=seconds, message=message, details=screen.dump())


def not_run(scenario: TtyScenario, names: tuple[str, ...], why: str, details: str = "") -> list[Case]:
    return [Case(name=name, outcome=Outcome.FAIL, message=f"not run: {why}", details=details) for name in names]


def run_session(runner: LauncherRun, prepared: Prepared, job: TtyJob, cancelled: threading.Event) -> Suite:
    """One scenario on one cell, in a fresh box (its share, HOME and TMPDIR)."""
    scenario = job.scenario
    started = time.monotonic()
    suite = Suite(name=job.suite_name, properties={"rows": str(scenario.rows), "cols": str(scenario.cols)})
    if prepared.problem:
        suite.cases = not_run(scenario, scenario.case_names, prepared.problem, prepared.details)
        return suite
    box = Path(tempfile.mkdtemp(prefix=f"ccvm-tty-{job.cell.id}-"))
    try:
        (box / "share").mkdir()
        request = BootRequest(
            cell=job.cell,
            scenario=tty_boot_scenario(scenario),
            box=box,
            timeout_s=job.timeout_s,
            cores=job.cores,
            memory_mib=job.memory_mib,
            log_dir=job.log_dir,
            cancelled=cancelled,
        )
        command = runner.terminal(prepared, request, scenario)
        log_path = job.log_dir / "terminal.log"
        suite.log_path = str(log_path)
        suite.properties.update(term=scenario.term, command=" ".join(command.argv))
        with PtyScreen(
            list(command.argv),
            env=command.env,
            cwd=command.cwd,
            rows=scenario.rows,
            cols=scenario.cols,
            log_path=log_path,
        ) as screen:
            suite.cases = _steps(screen, scenario, cancelled)
    finally:
        shutil.rmtree(box, ignore_errors=True)
    suite.seconds = time.monotonic() - started
    return suite


def _steps(screen: PtyScreen, scenario: TtyScenario, cancelled: threading.Event) -> list[Case]:
    cases: list[Case] = []
    for index, step in enumerate(scenario.steps):
        if cancelled.is_set():
            return cases + not_run(scenario, scenario.case_names[index:], "the run was stopped")
        case = take_step(screen, step)
        cases.append(case)
        if case.outcome is Outcome.FAIL:
            later = scenario.case_names[index + 1 :]
            return cases + not_run(scenario, later, f"step {step.name} failed")
    return [*cases, _exit_case(screen, scenario)]


# -- the run: every scenario on every selected cell --------------------------------


@dataclass(frozen=True, kw_only=True)
class TtyOptions:
    cells: tuple[Cell, ...]
    reports: Path  # logs go under reports/tty/<cell>/<scenario>
    timeout_s: float | None = None  # a boot's timeout (default: the launcher's, else the cell's)


def unavailable(cell: Cell, probe: KvmProbe) -> str:
    """Why the cell cannot run here ('' when it can): no QEMU, or an unusable KVM."""
    info = qemu_info(cell.arch)
    if info.path is None:
        return info.missing_reason
    if cell.accel is Accel.KVM:
        result = probe.result(cell.arch)
        if not result.usable:
            return result.reason
    return ""


def run_tty(
    launcher: Launcher,
    runner: LauncherRun,
    probe: KvmProbe,
    options: TtyOptions,
    *,
    on_suite: Callable[[Suite], None] = lambda _suite: None,
) -> list[Suite]:
    """Every tty scenario of the launcher on every cell, one after another (each step's timing
    is a person's, so no two sessions share the host's cores)."""
    cancelled = threading.Event()
    suites: list[Suite] = []
    try:
        for cell in options.cells:
            reason = unavailable(cell, probe)
            prepared = runner.prepare(cell) if not reason else None
            for scenario in launcher.tty:
                job = TtyJob(
                    cell=cell,
                    scenario=scenario,
                    timeout_s=boot_timeout_s(cell, launcher, options.timeout_s),
                    cores=cell.settings.cores,
                    memory_mib=cell.settings.memory_mib,
                    log_dir=options.reports / "tty" / cell.id / scenario.name,
                )
                if prepared is None:
                    suite = Suite(name=job.suite_name, cases=_skipped(scenario, reason))
                else:
                    suite = run_session(runner, prepared, job, cancelled)
                suites.append(suite)
                on_suite(suite)
    finally:
        cancelled.set()
    return suites


def _skipped(scenario: TtyScenario, reason: str) -> list[Case]:
    return [Case(name=name, outcome=Outcome.SKIP, message=reason) for name in scenario.case_names]
