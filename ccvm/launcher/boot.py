"""One boot of the launcher under test, whichever launcher it is.

``runner_for`` picks, once per run, how the launcher is run: ccvm's
embedded ``ccvm vm`` boots in this process (``EmbeddedRun``: the guest's
three channels, its facts and QEMU argv at hand), a declared launcher runs
as the project's own program (``ProcessRun``: in its own session, in a
fresh box with a private HOME and TMPDIR, its output watched for kernel
failure lines, killed with everything it started when the boot ends).
Both take the same ``BootRequest`` (a cell, one declared scenario, a box
whose ``share/`` holds the scenario's prepared files) and return the same
``LaunchResult``; the boot executor (ccvm.checks.boot) judges it the same
way for both.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pexpect.fdpexpect

from ccvm import processes
from ccvm.errors import GuestError, GuestFailure
from ccvm.files import cache_root
from ccvm.guest.assets import AssetStore, GuestAssets
from ccvm.launcher.build import LauncherBuilds
from ccvm.launcher.home import SECRET_PLACEHOLDER, plant_home
from ccvm.launcher.resolve import embedded_argv
from ccvm.matrix.launcher import Launcher
from ccvm.matrix.launcher_boot import BootScenario
from ccvm.matrix.launcher_tty import TtyScenario
from ccvm.matrix.model import Cell
from ccvm.qemu.console import OutputLog, failure_lines
from ccvm.qemu.guestrun import run_guest
from ccvm.qemu.launch import GuestRequest
from ccvm.text import output_lines

TAIL_LINES = 40


@dataclass(frozen=True, kw_only=True)
class BootRequest:
    cell: Cell
    scenario: BootScenario
    box: Path  # a private directory: share/ (the scenario's prepared files), home/, tmp/
    timeout_s: float
    cores: int
    memory_mib: int
    log_dir: Path
    cancelled: threading.Event

    @property
    def share(self) -> Path:
        return self.box / "share"


@dataclass(frozen=True, kw_only=True)
class LaunchResult:
    """What one boot returned."""

    output: str  # what the program printed (a declared launcher: its whole stdout and stderr)
    status: int | None  # None: it did not exit by itself (killed, or never started)
    seconds: float
    problem: str = ""  # why the boot itself failed: could not start, timed out, a kernel failure, stopped
    details: str = ""  # the console's last lines, for a failed boot
    qemu_argv: tuple[str, ...] = ()  # when ccvm started QEMU itself
    log_path: str = ""
    leftovers: tuple[str, ...] = ()  # what the launcher left running when it exited (ccvm stopped it)

    def shown_output(self) -> str:
        """The output as a report shows it: with a line naming what the launcher left running."""
        if not self.leftovers:
            return self.output
        left = self.leftovers
        note = (
            f"ccvm: the launcher left {len(left)} process(es) running after it exited "
            f"({processes.some_of(left)}); ccvm stopped them"
        )
        return self.output + ("" if self.output.endswith("\n") or not self.output else "\n") + note + "\n"


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """What a cell's boots need from the launcher, or why it cannot run there."""

    problem: str = ""  # one line: the build failed, the launcher is missing
    details: str = ""
    argv: tuple[str, ...] = ()  # the launcher's resolved argv (a declared launcher)
    env: dict[str, str] = field(default_factory=dict)  # handed to every boot (ccvm's guest assets)
    assets: GuestAssets | None = None  # ccvm's guest for the cell's arch, when the launcher uses it
    facts: dict[str, str] = field(default_factory=dict)  # for the report: the kernel, the launcher's argv


@dataclass(frozen=True, kw_only=True)
class TerminalCommand:
    """How to start the launcher for a terminal session (a tty scenario): run under a
    pseudo-terminal by ccvm.checks.tty."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path


class LauncherRun(Protocol):
    log_name: str  # the main log of a boot, under its log directory

    def prepare(self, cell: Cell) -> Prepared: ...

    def boot(self, prepared: Prepared, request: BootRequest) -> LaunchResult: ...

    def terminal(self, prepared: Prepared, request: BootRequest, tty: TtyScenario) -> TerminalCommand: ...


def _box_env(request: BootRequest) -> dict[str, str]:
    """The caller's environment less ccvm's own settings, with the box's private HOME and TMPDIR."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CCVM_")}
    env.update(HOME=str(request.box / "home"), TMPDIR=str(request.box / "tmp"), XDG_CACHE_HOME=str(cache_root().parent))
    for part in ("home", "tmp"):
        (request.box / part).mkdir(parents=True, exist_ok=True)
    return env


def tty_boot_scenario(tty: TtyScenario) -> BootScenario:
    """The parts of a tty scenario a launch is made of, as a boot scenario."""
    return BootScenario(name=tty.name, args=tty.args, share=tty.share, env=tty.env)


def _asset_facts(assets: GuestAssets) -> dict[str, str]:
    facts = {"kernel": assets.kernel_source.what, "kernel_sha256": assets.kernel_source.sha256}
    if assets.notes:
        facts["asset_notes"] = "; ".join(assets.notes)
    return facts


# -- ccvm's embedded launcher ------------------------------------------------------


class EmbeddedRun:
    """``ccvm vm`` in this process: the stub program with the scenario's arguments."""

    log_name = "console.log"

    def __init__(self, launcher: Launcher, store: AssetStore, matrix_root: Path | None = None) -> None:
        self.launcher, self.store, self.matrix_root = launcher, store, matrix_root

    def prepare(self, cell: Cell) -> Prepared:
        assets = self.store.for_arch(cell.arch)
        return Prepared(assets=assets, facts=_asset_facts(assets))

    def boot(self, prepared: Prepared, request: BootRequest) -> LaunchResult:
        scenario = request.scenario
        guest = GuestRequest(
            arch=request.cell.arch,
            accel=request.cell.accel,
            machine=request.cell.machine,
            memory_mib=request.memory_mib,
            cores=request.cores,
            program=(*self.launcher.program, *scenario.args),
            env=scenario.env,
            share_dir=request.share,
            share_writable=scenario.share == "writable",
        )
        log_path = str(request.log_dir / self.log_name)
        started = time.monotonic()
        assert prepared.assets is not None
        try:
            run = run_guest(
                guest,
                prepared.assets,
                log_dir=request.log_dir,
                timeout_s=request.timeout_s,
                cancelled=request.cancelled,
            )
        except GuestError as exc:
            return LaunchResult(
                output=exc.output if isinstance(exc, GuestFailure) else "",
                status=None,
                seconds=time.monotonic() - started,
                problem=exc.reason,
                details=exc.details,
                log_path=log_path,
            )
        return LaunchResult(
            output=run.agent_text, status=run.status, seconds=run.seconds, qemu_argv=run.qemu_argv, log_path=log_path
        )

    def terminal(self, prepared: Prepared, request: BootRequest, tty: TtyScenario) -> TerminalCommand:
        """``ccvm vm`` for the cell, with the scenario's arguments (``--shell``), as a person runs it."""
        cell = request.cell
        switch = self.launcher.share_switch(tty.share)
        flag = [switch.flag] if switch is not None and switch.flag else []
        argv = [*embedded_argv(), "--arch", str(cell.arch), "--accel", str(cell.accel), "--machine", str(cell.machine)]
        argv += [
            "--cores",
            str(request.cores),
            "--memory",
            f"{request.memory_mib}M",
            "--timeout",
            f"{request.timeout_s:g}",
        ]
        env = _box_env(request)
        if self.matrix_root is not None:
            env["CCVM_MATRIX"] = str(self.matrix_root)  # the guest pins this run uses
        env.update(TERM=tty.term, **tty.env)
        return TerminalCommand(argv=(*argv, *flag, *tty.args), env=env, cwd=request.share)


# -- a project's declared launcher -------------------------------------------------


def scenario_env(launcher: Launcher, request: BootRequest, prepared: Prepared) -> dict[str, str]:
    """The launcher's environment for one boot: the caller's, less ccvm's own settings
    and the dry-run hook; the private HOME and TMPDIR; placeholders for its secret
    variables; ccvm's guest assets; the cell's declared environment; the share switch's
    variable; the scenario's own."""
    cell, scenario = request.cell, request.scenario
    env = _box_env(request)
    env.pop(launcher.dry_run.variable, None)
    env.update({name: SECRET_PLACEHOLDER for name in launcher.secrets.variables})
    env.update(prepared.env)
    env.update(launcher.cell_env(arch=cell.arch, accel=cell.accel, machine=cell.machine))
    switch = launcher.share_switch(scenario.share)
    if switch is not None and switch.flag is None and switch.variable is not None:
        env[switch.variable] = switch.value
    env.update(scenario.env)
    return env


def scenario_argv(launcher: Launcher, argv: tuple[str, ...], scenario: BootScenario) -> list[str]:
    """The resolved argv, the share switch's flag, the declared program words, the scenario's arguments."""
    switch = launcher.share_switch(scenario.share)
    flag = [switch.flag] if switch is not None and switch.flag else []
    return [*argv, *flag, *launcher.program, *scenario.args]


def _watch(proc: subprocess.Popen, capture: OutputLog, *, timeout_s: float, cancelled: threading.Event) -> str:
    """Read the launcher's output to its end; '' when it ended, else why it was cut short."""
    deadline = time.monotonic() + timeout_s
    reader = pexpect.fdpexpect.fdspawn(
        proc.stdout.fileno(), encoding="utf-8", codec_errors="replace", maxread=65536, searchwindowsize=65536
    )
    reader.logfile_read = capture

    def stopped() -> bool:
        return cancelled.is_set() or time.monotonic() >= deadline

    for line in failure_lines(reader, stopped=stopped):
        return f"kernel console: {line}"
    if cancelled.is_set():
        return "the run was stopped; the launcher was killed"
    if time.monotonic() >= deadline:
        return f"timed out after {timeout_s:g}s; the launcher and everything it started were killed"
    return ""


def launch(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout_s: float, log_path: Path, cancelled: threading.Event
) -> LaunchResult:
    """Run the launcher once, under a supervisor: everything it started, even what left its
    session, is gone when this returns."""
    started = time.monotonic()
    try:
        proc = processes.spawn(
            argv,
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            supervise=processes.Supervision(),
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
    tree = proc.end() if isinstance(proc, processes.Supervised) else processes.TreeEnd()
    problem = problem or tree.problem
    if status is not None and status < 0:
        problem = f"the launcher was killed by signal {-status}"
        status = None
    output = capture.text()
    details = f"--- last {TAIL_LINES} lines of the launcher's output ---\n" + "\n".join(
        output_lines(output)[-TAIL_LINES:]
    )
    return LaunchResult(
        output=output,
        status=status,
        seconds=time.monotonic() - started,
        problem=problem,
        details=details if problem else "",
        log_path=str(log_path),
        leftovers=tree.leftovers,
    )


class ProcessRun:
    """A project's own launcher, run as its program, once per scenario."""

    log_name = "output.log"

    def __init__(self, launcher: Launcher, store: AssetStore, builds: LauncherBuilds) -> None:
        self.launcher, self.store, self.builds = launcher, store, builds

    def prepare(self, cell: Cell) -> Prepared:
        built = self.builds.for_system(cell.arch.nix_system)
        if built.problem:
            return Prepared(problem=built.problem, details=built.details)
        facts = {"launcher_argv": " ".join(built.argv)}
        if not self.launcher.uses_ccvm_guest:
            return Prepared(argv=built.argv, facts=facts)
        assets = self.store.for_arch(cell.arch)
        upper = str(cell.arch).upper()
        env = {f"CCVM_KERNEL_{upper}": str(assets.kernel), f"CCVM_INITRD_{upper}": str(assets.initrd)}
        return Prepared(argv=built.argv, env=env, assets=assets, facts={**facts, **_asset_facts(assets)})

    def terminal(self, prepared: Prepared, request: BootRequest, tty: TtyScenario) -> TerminalCommand:
        """The project's own launcher with the scenario's arguments, its private HOME planted as for a boot."""
        boot = tty_boot_scenario(tty)
        request = dataclasses.replace(request, scenario=boot)
        env = scenario_env(self.launcher, request, prepared)
        plant_home(request.box / "home", self.launcher, lambda _tilde: SECRET_PLACEHOLDER)
        env["TERM"] = tty.term
        env.update(tty.env)
        switch = self.launcher.share_switch(tty.share)
        flag = [switch.flag] if switch is not None and switch.flag else []
        return TerminalCommand(argv=(*prepared.argv, *flag, *tty.args), env=env, cwd=request.share)

    def boot(self, prepared: Prepared, request: BootRequest) -> LaunchResult:
        env = scenario_env(self.launcher, request, prepared)
        plant_home(request.box / "home", self.launcher, lambda _tilde: SECRET_PLACEHOLDER)
        return launch(
            scenario_argv(self.launcher, prepared.argv, request.scenario),
            cwd=request.share,
            env=env,
            timeout_s=request.timeout_s,
            log_path=request.log_dir / self.log_name,
            cancelled=request.cancelled,
        )


def runner_for(
    launcher: Launcher,
    *,
    root: Path,
    store: AssetStore,
    build_timeout_s: float,
    log_dir: Path,
    matrix_root: Path | None = None,
):
    """How this run runs the launcher under test: chosen once, here."""
    if launcher.embedded:
        return EmbeddedRun(launcher, store, matrix_root)
    return ProcessRun(launcher, store, LauncherBuilds(launcher, root, timeout_s=build_timeout_s, log_dir=log_dir))
