"""The scenarios asserted on every boot cell, each a JUnit testcase.

A scenario is a name (the JUnit case) and a check function over what one
boot showed (``Evidence``); each boot plan lists the scenarios it serves
and, as data, what they assert: the arguments, the share mode and the
filesystem the guest must see, the files that must and must not reach the
host's share, the exit status.  Two boots per cell:
  overlay   the default share (read-only 9p lower + guest overlay); the
            stub gets the hard argv and exits with EXPECTED_STATUS
            -> argv-verbatim, share-overlay, exit-status
  writable  the writable share -> share-writable
``CASE_NAMES``, the cases every cell reports, is derived from the plans.

Each boot of the embedded launcher is declared with the very type a
project's matrix/launcher.yaml declares its boots with
(``ccvm.matrix.launcher_boot.BootScenario``: arguments, share mode,
environment, files prepared in the share, lines the stub must print, files
that must and must not reach the host, exit status): ``embedded_boots``.
The embedded launcher then asserts more than a declared one can, one case
per scenario below, from the facts its stub reports.  ``host_files_problem``
and ``status_problem`` are the checks both kinds share
(``ccvm.checks.boot.declared`` runs the declared ones).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ccvm.matrix.launcher_boot import BootDeclaration, BootScenario
from ccvm.qemu.guestrun import GuestRun
from ccvm.text import output_lines

STUB = "ccvm-stub"
# Arguments that break naive quoting: each must arrive byte for byte.
HARD_ARGS: tuple[str, ...] = (
    "two words",
    'it\'s "quoted"',
    "$HOME ${PATH} $(echo no) `echo no`",
    "back\\slash\\\\",
    "new\nline",
    "",
    "héllo wörld ✓ 日本",
    "--flag",
    "-x",
    "*",
    "  padded  ",
)
EXPECTED_STATUS = 7
PROBE_FILE = ".ccvm-probe"
GUEST_FILE = ".ccvm-guest-wrote"


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """What one boot showed: the run, the plan it followed, the share it had."""

    run: GuestRun
    plan: BootPlan
    share: Path
    probe_text: str


Check = Callable[[Evidence], str | None]  # None: passed; else the one-line problem


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str  # the JUnit case
    check: Check


@dataclass(frozen=True, kw_only=True)
class BootPlan:
    """One boot of the embedded launcher: its declaration and the cases asserted on it."""

    boot: BootScenario  # what is booted and expected, as a matrix/launcher.yaml scenario says it
    scenarios: tuple[Scenario, ...] = ()

    @property
    def name(self) -> str:
        return self.boot.name

    @property
    def writable(self) -> bool:
        return self.boot.share == "writable"

    @property
    def program(self) -> tuple[str, ...]:
        """The stub and its arguments, each to arrive verbatim."""
        return (STUB, *self.boot.args)

    @property
    def env(self) -> dict[str, str]:
        return self.boot.env

    @property
    def fstype(self) -> str:
        """The guest's working directory: overlay (read-only share) or 9p (writable)."""
        return "9p" if self.writable else "overlay"

    @property
    def must_exist(self) -> tuple[str, ...]:
        return self.boot.must_exist

    @property
    def must_not_exist(self) -> tuple[str, ...]:
        return self.boot.must_not_exist

    @property
    def exit_status(self) -> int:
        return self.boot.exit_status


def probe_text(token: str) -> str:
    """What the host writes into the share for the guest to read back."""
    return f"host probe {token} ✓"


def host_files_problem(share: Path, *, must_exist: tuple[str, ...], must_not_exist: tuple[str, ...]) -> str | None:
    """None when the share on the host holds what it must and lacks what it must not."""
    for name in must_exist:
        if not (share / name).exists():
            return f"{name} did not reach the host (it must exist in the shared directory after the boot)"
    for name in must_not_exist:
        if (share / name).exists():
            return f"{name} reached the host (it must not exist in the shared directory after the boot)"
    return None


def status_problem(got: int | None, expected: int) -> str | None:
    if got != expected:
        return f"the launcher reported exit status {got}, the stub exited {expected}"
    return None


def _unhex(value: str) -> str:
    return bytes.fromhex(value).decode("utf-8", errors="surrogateescape")


def check_argv(evidence: Evidence) -> str | None:
    """None when argv arrived verbatim, else what differs."""
    run = evidence.run
    expected = evidence.plan.program[1:]
    if run.facts.get("argc") != str(len(expected)):
        return f"argc: expected {len(expected)}, the stub saw {run.facts.get('argc', 'nothing')}"
    for index, want in enumerate(expected):
        raw = run.facts.get(f"argv.{index}")
        got = None if raw is None else _unhex(raw)
        if got != want:
            return f"argv[{index}]: expected {want!r}, the stub saw {got!r}"
    return None


def _common_share(run: GuestRun, probe_text: str) -> str | None:
    read = run.facts.get("share.read")
    if read is None or read == "missing":
        return "host -> guest: the stub could not see the host's probe file"
    if _unhex(read) != probe_text:
        return f"host -> guest: the probe file reads {_unhex(read)!r}, expected {probe_text!r}"
    if run.facts.get("share.write") != "ok":
        return "the guest could not write to its working directory"
    return None


def check_share(evidence: Evidence) -> str | None:
    """The share works both ways its plan says: read-only overlay, or writable 9p."""
    run, plan = evidence.run, evidence.plan
    problem = _common_share(run, evidence.probe_text)
    if problem:
        return problem
    fstype = run.facts.get("share.fstype")
    mode = "writable share" if plan.writable else "default share"
    if fstype != plan.fstype:
        return f"{mode}: the working directory is {fstype!r}, expected {plan.fstype}"
    unmatched = unmatched_expectations(run.agent_text, plan.boot.expect)
    if unmatched:
        return f"{mode}: {unmatched[0]}"
    problem = host_files_problem(evidence.share, must_exist=plan.must_exist, must_not_exist=plan.must_not_exist)
    if problem:
        return f"guest -> host, {mode}: {problem}"
    if GUEST_FILE in plan.must_exist and (evidence.share / GUEST_FILE).read_text(encoding="utf-8") != plan.env.get(
        "CCVM_STUB_TOKEN"
    ):
        return "guest -> host: the file on the host does not hold what the guest wrote"
    return None


def check_status(evidence: Evidence) -> str | None:
    return status_problem(evidence.run.status, evidence.plan.exit_status)


OVERLAY_SCENARIOS = (
    Scenario(name="argv-verbatim", check=check_argv),
    Scenario(name="share-overlay", check=check_share),
    Scenario(name="exit-status", check=check_status),
)
WRITABLE_SCENARIOS = (Scenario(name="share-writable", check=check_share),)


def embedded_boots(token: str) -> BootDeclaration:
    """The embedded launcher's two boots per cell, declared as a project declares its own."""
    env = {"CCVM_STUB_TOKEN": token}
    prepare = {PROBE_FILE: probe_text(token)}
    return BootDeclaration(
        scenarios=(
            BootScenario(
                name="overlay",
                args=HARD_ARGS,
                share="overlay",
                env={**env, "CCVM_STUB_EXIT": str(EXPECTED_STATUS)},
                prepare=prepare,
                expect=(re.compile(r"^CCVM:FACT share\.fstype=overlay$"),),
                must_not_exist=(GUEST_FILE,),
                exit_status=EXPECTED_STATUS,
            ),
            BootScenario(
                name="writable",
                share="writable",
                env=env,
                prepare=prepare,
                expect=(re.compile(r"^CCVM:FACT share\.fstype=9p$"),),
                must_exist=(GUEST_FILE,),
            ),
        )
    )


CASES_OF_BOOT = {"overlay": OVERLAY_SCENARIOS, "writable": WRITABLE_SCENARIOS}


def boot_plans(token: str) -> tuple[BootPlan, ...]:
    return tuple(BootPlan(boot=boot, scenarios=CASES_OF_BOOT[boot.name]) for boot in embedded_boots(token).scenarios)


def unmatched_expectations(output: str, expect: tuple[re.Pattern[str], ...]) -> list[str]:
    """A problem for each pattern of a scenario's `expect` that matches no line of the output."""
    lines = output_lines(output)
    return [f"no output line matches {p.pattern!r}" for p in expect if not any(p.search(line) for line in lines)]


def write_prepared(share: Path, boot: BootScenario) -> None:
    """The scenario's `prepare` files, written into the shared directory before the boot."""
    share.mkdir(parents=True, exist_ok=True)
    for name, content in boot.prepare.items():
        (share / name).parent.mkdir(parents=True, exist_ok=True)
        (share / name).write_text(content, encoding="utf-8")


CASE_NAMES = tuple(scenario.name for plan in boot_plans("") for scenario in plan.scenarios)
