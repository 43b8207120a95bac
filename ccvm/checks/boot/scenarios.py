"""The scenarios asserted on every boot cell, each a JUnit testcase.

A scenario is a name (the JUnit case) and a check function over what one
boot showed (``Evidence``); each boot plan lists the scenarios it serves.
Two boots per cell:
  overlay   the default share (read-only 9p lower + guest overlay); the
            stub gets the hard argv and exits with EXPECTED_STATUS
            -> argv-verbatim, share-overlay, exit-status
  writable  the writable share -> share-writable
``CASE_NAMES``, the cases every cell reports, is derived from the plans.
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
    program: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    scenarios: tuple[Scenario, ...] = ()


def probe_text(token: str) -> str:
    """What the host writes into the share for the guest to read back."""
    return f"host probe {token} ✓"


def prepare_share(share: Path, text: str) -> None:
    share.mkdir(parents=True, exist_ok=True)
    (share / PROBE_FILE).write_text(text, encoding="utf-8")


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
    on_host = evidence.share / GUEST_FILE
    if plan.writable:
        if fstype != "9p":
            return f"writable share: the working directory is {fstype!r}, expected 9p"
        if not on_host.is_file():
            return "guest -> host: the guest's write did not reach the host in writable mode"
        if on_host.read_text(encoding="utf-8") != plan.env["CCVM_STUB_TOKEN"]:
            return "guest -> host: the file on the host does not hold what the guest wrote"
        return None
    if fstype != "overlay":
        return f"default share: the working directory is {fstype!r}, expected overlay"
    if on_host.exists():
        return "guest -> host: the guest's write reached the host through the read-only overlay"
    return None


def check_status(evidence: Evidence) -> str | None:
    status = evidence.run.status
    if status != EXPECTED_STATUS:
        return f"the launcher reported exit status {status}, the stub exited {EXPECTED_STATUS}"
    return None


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
        ),
        BootPlan(name="writable", writable=True, program=(STUB,), env=env, scenarios=WRITABLE_SCENARIOS),
    )


CASE_NAMES = tuple(scenario.name for plan in boot_plans("") for scenario in plan.scenarios)
