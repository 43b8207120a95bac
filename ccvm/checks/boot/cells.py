"""What one cell's run returned, and its JUnit suite.

``CellResult`` is returned by the executor for each cell: its attempts (each
boot's cases and launch results), what the launcher's preparation found
(the kernel, the launcher's argv), why it did not run (an unavailable
accelerator, a stopped run), and its wall time.  ``cell_suite`` is the one
place a cell's suite and its properties are written, from that result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ccvm.checks.boot.job import CellJob
from ccvm.checks.boot.retries import Attempt, with_history
from ccvm.launcher.boot import LaunchResult, Prepared
from ccvm.report.results import Case, Outcome, Suite


@dataclass(frozen=True, kw_only=True)
class CellResult:
    job: CellJob
    attempts: tuple[Attempt, ...] = ()
    launches: tuple[LaunchResult, ...] = ()  # the last attempt's boots that ran, in the declared order
    prepared: Prepared = field(default_factory=Prepared)
    unavailable: str = ""  # QEMU or the accelerator is missing: nothing was booted
    missing: tuple[str, ...] = ()  # what is missing, by the names --require takes ("qemu", "kvm")
    stopped: str = ""  # the run stopped before the cell finished
    seconds: float = 0.0  # wall time

    @property
    def passed(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].outcome is Outcome.PASS and not self.stopped


def _every_case(job: CellJob, outcome: Outcome, message: str) -> list[Case]:
    return [Case(name=name, outcome=outcome, message=message) for name in job.case_names]


def _properties(result: CellResult, cases: list[Case]) -> dict[str, str]:
    job = result.job
    properties = {"accel": str(job.cell.accel), "machine": str(job.cell.machine), "launcher": job.launcher.name}
    properties.update(result.prepared.facts)
    argv = next((launch.qemu_argv for launch in result.launches if launch.qemu_argv), ())
    if argv:
        properties["qemu_argv"] = json.dumps(list(argv))
    if result.launches:
        properties["boot_seconds"] = f"{max(launch.seconds for launch in result.launches):.1f}"
    properties["attempts"] = str(len(result.attempts))
    flaky = [case.name for case in cases if case.flaky]
    if flaky:
        properties["flaky"] = ", ".join(flaky)  # the cases that passed only on a retry
    return properties


def cell_suite(result: CellResult) -> Suite:
    job = result.job
    if result.unavailable:
        policy = job.requirements
        cases = _every_case(job, policy.outcome(*result.missing), policy.message(result.unavailable, *result.missing))
        return Suite(name=job.suite_name, cases=cases, properties={"accel": "none"}, seconds=result.seconds)
    if result.stopped and not result.attempts:
        return Suite(name=job.suite_name, cases=_every_case(job, Outcome.FAIL, result.stopped), seconds=result.seconds)
    cases = with_history(result.attempts)
    return Suite(
        name=job.suite_name,
        cases=cases,
        properties=_properties(result, cases),
        log_path=next((launch.log_path for launch in result.launches if launch.log_path), ""),
        seconds=result.seconds,
    )
