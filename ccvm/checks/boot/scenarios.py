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

``host_files_problem`` and ``status_problem`` are shared with the boots of
a declared launcher (``ccvm.checks.boot.declared``), whose scenarios say
the same things in matrix/launcher.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.qemu.guestrun import GuestRun

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
    name: str
    writable: bool
    program: tuple[str, ...]  # the stub and its arguments, each to arrive verbatim
    env: dict[str, str] = field(default_factory=dict)
    scenarios: tuple[Scenario, ...] = ()
    fstype: str = "overlay"  # the guest's working directory: overlay (read-only share) or 9p (writable)
    must_exist: tuple[str, ...] = ()  # in the host's share after the boot
    must_not_exist: tuple[str, ...] = ()
    exit_status: int = 0  # what the stub exits with, reported by the launcher


def probe_text(token: str) -> str:
    """What the host writes into the share for the guest to read back."""
    return f"host probe {token} ✓"


def prepare_share(share: Path, text: str) -> None:
    share.mkdir(parents=True, exist_ok=True)
    (share / PROBE_FILE).write_text(text, encoding="utf-8")


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


def boot_plans(token: str) -> tuple[BootPlan, ...]:
    env = {"CCVM_STUB_TOKEN": token}
    return (
        BootPlan(
            name="overlay",
            writable=False,
            program=(STUB, *HARD_ARGS),
            env={**env, "CCVM_STUB_EXIT": str(EXPECTED_STATUS)},
            scenarios=OVERLAY_SCENARIOS,
            fstype="overlay",
            must_not_exist=(GUEST_FILE,),
            exit_status=EXPECTED_STATUS,
        ),
        BootPlan(
            name="writable",
            writable=True,
            program=(STUB,),
            env=env,
            scenarios=WRITABLE_SCENARIOS,
            fstype="9p",
            must_exist=(GUEST_FILE,),
        ),
    )


CASE_NAMES = tuple(scenario.name for plan in boot_plans("") for scenario in plan.scenarios)
