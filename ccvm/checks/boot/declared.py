"""``ccvm boot`` through a declared launcher (matrix/launcher.yaml).

For each cell: build the launcher once per Nix system if the declaration
has a build step for it (``LauncherBuilds``), then boot each declared
scenario (``DeclaredBoot.attempt``): the launcher starts in its own session
(``ccvm.processes``) in a fresh shared directory holding the scenario's
``prepare`` files, with a private HOME and TMPDIR, the cell's environment,
the share switch and the scenario's arguments.  Its whole output (stdout
and stderr) is read through pexpect under the boot timeout; a kernel
failure line (the console's own patterns) ends the boot early, and on a
timeout or a stopped run the whole process group is killed.  Each scenario
is one JUnit case of the cell's suite ``boot.<cell>``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pexpect
import pexpect.fdpexpect

from ccvm import processes
from ccvm.checks.boot.cores import Cancelled
from ccvm.checks.boot.scenarios import host_files_problem, status_problem, unmatched_expectations, write_prepared
from ccvm.checks.host.sandbox import SETTINGS_TEXT
from ccvm.checks.host.suite import resolve_wrapper
from ccvm.checks.nix.tool import error_summary, find_nix, missing_reason
from ccvm.errors import CcvmError, ConfigError
from ccvm.files import cache_root
from ccvm.guest.assets import AssetStore
from ccvm.matrix.launcher import BuildStep, Launcher
from ccvm.matrix.launcher_boot import BootScenario
from ccvm.matrix.model import Cell, Matrix
from ccvm.qemu.console import KERNEL_FAILURES, OutputLog
from ccvm.report.results import Case, Outcome, Suite
from ccvm.text import clean_text, last_line, output_lines

POLL_S = 0.2  # the longest a kernel failure line or a stop goes unnoticed
TAIL_LINES = 40
SECRET_PLACEHOLDER = "ccvm-boot-placeholder"  # what the private HOME's secret files and variables hold

Slot = Callable[[Cell], AbstractContextManager]  # holds host cores for one boot of the cell; raises Cancelled


def nix_system(cell: Cell) -> str:
    return f"{cell.arch}-linux"


def check_declared(launcher: Launcher, root: Path) -> None:
    """What can be known before booting anything: one error line each."""
    where = launcher.source or "launcher.yaml"
    if not launcher.boot.scenarios:
        raise ConfigError(where, None, "declares no boot scenarios; add `boot: {scenarios: [...]}` (docs: boot.md)")
    if not launcher.build:
        resolve_wrapper(launcher, root)  # nothing will build it: a missing launcher is an error now


# -- building -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Built:
    """The launcher's argv for one Nix system, or why there is none."""

    wrapper: tuple[str, ...] = ()
    problem: str = ""  # one line
    details: str = ""  # the build's last lines
    out_path: str = ""  # what a flake build printed


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(clean_text(text).splitlines()[-lines:])


def _build_argv(step: BuildStep) -> tuple[list[str] | None, str]:
    if step.command:
        return list(step.command), ""
    nix = find_nix()
    if nix is None:
        return None, missing_reason()
    # --json rather than --print-out-paths (Nix 2.9): the same output paths, from Nix 2.4 on
    return nix.argv("build", "--no-link", "--json", str(step.flake)), ""


def run_build(step: BuildStep, root: Path, timeout_s: float) -> processes.Completed | str:
    """Run the build step from the project root; a str says why it could not start."""
    argv, why = _build_argv(step)
    if argv is None:
        return why
    try:
        return processes.run(argv, timeout_s=timeout_s, cwd=str(root))
    except OSError as exc:
        return f"{argv[0]}: could not start ({exc.strerror or exc})"


def _out_path(stdout: str) -> str:
    """The first output path of `nix build --json`'s first result ('' when there is none)."""
    try:
        results = json.loads(stdout)
        return str(next(iter(results[0]["outputs"].values())))
    except (ValueError, LookupError, TypeError, AttributeError, StopIteration):
        return ""


def _built(step: BuildStep, result: processes.Completed) -> Built:
    what = f"build {step.flake or ' '.join(step.command)} ({step.system})"
    if result.returncode != 0:
        how = "timed out" if result.returncode is None else f"exited {result.returncode}"
        why = error_summary(result.stderr) if step.flake else last_line(result.stderr)
        return Built(problem=f"{what} {how}: {why}", details=_tail(result.stdout + "\n" + result.stderr))
    if step.command:
        return Built()  # the command leaves the launcher under the project root
    out = _out_path(result.stdout)
    if not out:
        return Built(problem=f"{what} printed no output path", details=_tail(result.stdout + "\n" + result.stderr))
    return Built(out_path=out)


def _in_output(launcher: Launcher) -> Launcher:
    """After a flake build argv[0] names a file in the build's output; a leading
    ``result/`` (the link a plain ``nix build`` makes) stands for that output too."""
    first, *rest = launcher.argv
    parts = PurePosixPath(first).parts
    if len(parts) > 1 and parts[0] == "result":
        first = str(PurePosixPath(*parts[1:]))
    return dataclasses.replace(launcher, argv=(first, *rest))


class LauncherBuilds:
    """One build per Nix system per run, shared by the cells of that system."""

    def __init__(self, launcher: Launcher, root: Path, *, timeout_s: float, log_dir: Path) -> None:
        self.launcher, self.root, self.timeout_s, self.log_dir = launcher, root, timeout_s, log_dir
        self._lock = threading.Lock()
        self._per_system: dict[str, threading.Lock] = {}
        self._done: dict[str, Built] = {}

    def for_system(self, system: str) -> Built:
        with self._lock:
            lock = self._per_system.setdefault(system, threading.Lock())
        with lock:
            if system not in self._done:
                self._done[system] = self._build_and_resolve(system)
            return self._done[system]

    def _build_and_resolve(self, system: str) -> Built:
        step = self.launcher.build_for(system)
        built = Built()
        if step is not None:
            result = run_build(step, self.root, self.timeout_s)
            if isinstance(result, str):
                return Built(problem=f"build ({system}): {result}")
            self._log(system, result)
            built = _built(step, result)
            if built.problem:
                return built
        launcher, base = self.launcher, self.root
        if built.out_path:
            launcher, base = _in_output(self.launcher), Path(built.out_path)
        try:
            return Built(wrapper=resolve_wrapper(launcher, base), out_path=built.out_path)
        except CcvmError as exc:
            where = f" in the build's output {built.out_path}" if built.out_path else ""
            return Built(problem=f"the launcher{where}: {exc}")

    def _log(self, system: str, result: processes.Completed) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        text = f"$ {' '.join(result.argv)}\n{result.stdout}\n{result.stderr}"
        (self.log_dir / f"build-{system}.log").write_text(text, encoding="utf-8", errors="replace")


# -- one boot -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LaunchResult:
    output: str
    status: int | None  # None: it did not exit by itself (killed, or never started)
    seconds: float
    problem: str = ""  # why the run itself failed: could not start, timed out, a kernel failure, stopped


def _watch(proc: subprocess.Popen, capture: OutputLog, *, timeout_s: float, cancelled: threading.Event) -> str:
    """Read the launcher's output to its end; '' when it ended, else why it was cut short."""
    reader = pexpect.fdpexpect.fdspawn(
        proc.stdout.fileno(), encoding="utf-8", codec_errors="replace", maxread=65536, searchwindowsize=65536
    )
    reader.logfile_read = capture
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"timed out after {timeout_s:g}s; the launcher and everything it started were killed"
        if cancelled.is_set():
            return "the run was stopped; the launcher was killed"
        index = reader.expect([KERNEL_FAILURES, pexpect.EOF, pexpect.TIMEOUT], timeout=min(POLL_S, remaining))
        if index == 0:
            return f"kernel console: {reader.after.strip()}"
        if index == 1:
            return ""


def launch(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout_s: float, log_path: Path, cancelled: threading.Event
) -> LaunchResult:
    """Run the launcher once; its whole process group is gone when this returns."""
    started = time.monotonic()
    try:
        proc = processes.spawn(
            argv, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    except OSError as exc:
        return LaunchResult(output="", status=None, seconds=0.0, problem=f"{argv[0]}: could not start ({exc})")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    capture = OutputLog(log_path)
    status: int | None = None
    try:
        problem = _watch(proc, capture, timeout_s=timeout_s, cancelled=cancelled)
        if not problem:
            try:
                status = proc.wait(timeout=processes.KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                problem = "the launcher closed its output but did not exit; it was killed"
    finally:
        processes.stop(proc, term_grace_s=0 if problem else processes.TERM_GRACE_S)
        processes.forget(proc)  # anything left in its group
        proc.stdout.close()
        capture.close()
    if status is not None and status < 0:
        problem = f"the launcher was killed by signal {-status}"
        status = None
    return LaunchResult(output=capture.text(), status=status, seconds=time.monotonic() - started, problem=problem)


# -- one scenario ---------------------------------------------------------------


def _private_home(home: Path, launcher: Launcher) -> None:
    """The declared configuration files with harmless text, the secret files with a placeholder."""
    for tilde in (*launcher.config_files, *launcher.secrets.files):
        path = home / tilde.removeprefix("~/")
        path.parent.mkdir(parents=True, exist_ok=True)
        is_secret = tilde in launcher.secrets.files
        path.write_text('{"token": "' + SECRET_PLACEHOLDER + '"}\n' if is_secret else SETTINGS_TEXT)
        if is_secret:
            os.chmod(path, 0o600)


def scenario_env(launcher: Launcher, cell: Cell, scenario: BootScenario, *, box: Path, guest: dict) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CCVM_")}
    env.pop(launcher.dry_run.variable, None)
    env.update({name: SECRET_PLACEHOLDER for name in launcher.secrets.variables})
    env.update(HOME=str(box / "home"), TMPDIR=str(box / "tmp"), XDG_CACHE_HOME=str(cache_root().parent))
    env.update(guest)
    env.update(launcher.cell_env(arch=cell.arch, accel=cell.accel, machine=cell.machine))
    switch = launcher.share_switch(scenario.share)
    if switch is not None and switch.flag is None and switch.variable is not None:
        env[switch.variable] = switch.value
    env.update(scenario.env)
    return env


def scenario_argv(launcher: Launcher, wrapper: tuple[str, ...], scenario: BootScenario) -> list[str]:
    switch = launcher.share_switch(scenario.share)
    flag = [switch.flag] if switch is not None and switch.flag else []
    return [*wrapper, *flag, *launcher.program, *scenario.args]


def _prepare_box(box: Path, launcher: Launcher, scenario: BootScenario) -> Path:
    share = box / "share"
    for part in ("share", "home", "tmp"):
        (box / part).mkdir()
    _private_home(box / "home", launcher)
    write_prepared(share, scenario)
    return share


def scenario_problems(scenario: BootScenario, result: LaunchResult, share: Path) -> list[str]:
    """Everything the scenario asserts that did not hold, the first one first."""
    if result.problem:
        return [result.problem]
    problems = unmatched_expectations(result.output, scenario.expect)
    host = host_files_problem(share, must_exist=scenario.must_exist, must_not_exist=scenario.must_not_exist)
    problems += [host] if host else []
    status = status_problem(result.status, scenario.exit_status, expected_is="the scenario expects")
    return problems + ([status] if status else [])


def judge_scenario(scenario: BootScenario, result: LaunchResult, share: Path) -> Case:
    problems = scenario_problems(scenario, result, share)
    tail = "\n".join(output_lines(result.output)[-TAIL_LINES:])
    details = "\n".join(problems[1:]) + f"\n--- last {TAIL_LINES} lines of the launcher's output ---\n{tail}"
    return Case(
        name=scenario.name,
        outcome=Outcome.FAIL if problems else Outcome.PASS,
        seconds=result.seconds,
        message=problems[0] if problems else "",
        details=details.strip() if problems else "",
        output=result.output,
    )


# -- one attempt of one cell ----------------------------------------------------


class DeclaredBoot:
    """The executor the boot runner uses when matrix/launcher.yaml declares the launcher."""

    def __init__(
        self,
        *,
        launcher: Launcher,
        root: Path,
        store: AssetStore,
        reports: Path,
        timeout_s: float | None,
        build_timeout_s: float,
        cancelled: threading.Event,
        slot: Slot,
    ) -> None:
        self.launcher, self.root, self.store, self.reports, self.cancelled = launcher, root, store, reports, cancelled
        self.slot = slot
        self.timeout_s = timeout_s or launcher.boot.timeout_s
        self.build_timeout_s = build_timeout_s
        self.builds = LauncherBuilds(launcher, root, timeout_s=build_timeout_s, log_dir=reports / "boot")

    @property
    def case_names(self) -> tuple[str, ...]:
        return tuple(scenario.name for scenario in self.launcher.boot.scenarios)

    def attempt_seconds(self) -> float:
        """The longest one attempt of one cell can take, its boots one after another
        (the builds are counted once per run)."""
        return self.timeout_s * len(self.launcher.boot.scenarios)

    def builds_seconds(self) -> float:
        """The longest the builds can take, one per declared Nix system."""
        return self.build_timeout_s * len(self.launcher.build)

    def _guest_env(self, cell: Cell, suite: Suite) -> dict[str, str]:
        if self.launcher.guest_assets != "env":
            return {}
        assets = self.store.for_arch(cell.arch)
        suite.properties.update(kernel=assets.kernel_source.what, kernel_sha256=assets.kernel_source.sha256)
        upper = str(cell.arch).upper()
        return {f"CCVM_KERNEL_{upper}": str(assets.kernel), f"CCVM_INITRD_{upper}": str(assets.initrd)}

    def attempt(self, cell: Cell, number: int, *, suite_name: str) -> Suite:
        log_root = self.reports / "boot" / cell.id / f"attempt-{number}"
        first = self.launcher.boot.scenarios[0].name
        properties = {"accel": str(cell.accel), "machine": str(cell.machine), "launcher": self.launcher.name}
        suite = Suite(name=suite_name, log_path=str(log_root / first / "output.log"), properties=properties)
        built = self.builds.for_system(nix_system(cell))
        if built.problem:
            suite.cases = [self._not_run(s, built.problem, built.details) for s in self.launcher.boot.scenarios]
            return suite
        suite.properties["launcher_argv"] = " ".join(built.wrapper)
        guest = self._guest_env(cell, suite)
        scenarios = self.launcher.boot.scenarios
        with concurrent.futures.ThreadPoolExecutor(len(scenarios), thread_name_prefix=f"ccvm-{cell.id}") as boots:
            futures = [
                boots.submit(self._in_slot, cell, scenario, built.wrapper, guest, log_root / scenario.name)
                for scenario in scenarios
            ]
            suite.cases = [future.result() for future in futures]  # the declared order, whichever ends first
        suite.properties["boot_seconds"] = f"{sum(case.seconds for case in suite.cases):.1f}"
        return suite

    @staticmethod
    def _not_run(scenario: BootScenario, message: str, details: str = "") -> Case:
        return Case(name=scenario.name, outcome=Outcome.FAIL, message=message, details=details)

    def _in_slot(self, cell: Cell, scenario: BootScenario, wrapper: tuple, guest: dict, log_dir: Path) -> Case:
        """Boot the scenario once the scheduler gives it host cores."""
        try:
            with self.slot(cell):
                if self.cancelled.is_set():
                    raise Cancelled
                return self._scenario(cell, scenario, wrapper, guest, log_dir)
        except Cancelled:
            return self._not_run(scenario, f"{scenario.name} boot: run stopped before it started")

    def _scenario(self, cell: Cell, scenario: BootScenario, wrapper: tuple, guest: dict, log_dir: Path) -> Case:
        with tempfile.TemporaryDirectory(prefix=f"ccvm-boot-{cell.id}-") as parent:
            box = Path(parent)
            share = _prepare_box(box, self.launcher, scenario)
            result = launch(
                scenario_argv(self.launcher, wrapper, scenario),
                cwd=share,
                env=scenario_env(self.launcher, cell, scenario, box=box, guest=guest),
                timeout_s=self.timeout_s,
                log_path=log_dir / "output.log",
                cancelled=self.cancelled,
            )
            return judge_scenario(scenario, result, share)


def declared_boot(
    matrix: Matrix,
    *,
    store: AssetStore,
    reports: Path,
    timeout_s: float | None,
    cancelled: threading.Event,
    slot: Slot,
) -> DeclaredBoot | None:
    """The executor for the matrix's declared launcher; None for ccvm's embedded one."""
    if not matrix.under_test.declared:
        return None
    return DeclaredBoot(
        launcher=matrix.under_test,
        root=matrix.root.resolve().parent,
        store=store,
        reports=reports,
        timeout_s=timeout_s,
        build_timeout_s=matrix.builds.timeout_s,
        cancelled=cancelled,
        slot=slot,
    )
