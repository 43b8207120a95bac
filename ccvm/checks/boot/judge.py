"""The one judge: a boot's JUnit cases from what it returned.

A scenario that names ccvm's own cases (``BootScenario.cases``, the
embedded launcher's boots do) gets one case per name, each a check function
from ``CASE_CHECKS`` over the stub's facts; any other scenario gets one
case, named as the scenario, asserting what it declares (output lines,
files on the host, exit status).  A boot that failed by itself (it could
not start, timed out, hit a kernel failure, was stopped) fails every case
judged on it with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ccvm.launcher.boot import TAIL_LINES, LaunchResult
from ccvm.launcher.embedded import GUEST_FILE, PROBE_FILE, TOKEN_VARIABLE
from ccvm.matrix.launcher_boot import BootScenario
from ccvm.qemu.guestrun import parse_facts
from ccvm.report.results import Case, Outcome
from ccvm.text import output_lines


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """What one boot showed: the scenario it ran, what it returned, the share it had."""

    scenario: BootScenario
    result: LaunchResult
    share: Path
    facts: dict[str, str]  # the stub's CCVM:FACT lines


Check = Callable[[Evidence], str | None]  # None: passed; else the one-line problem


def unmatched_expectations(output: str, expect: tuple[re.Pattern[str], ...]) -> list[str]:
    """A problem for each pattern of a scenario's `expect` that matches no line of the output."""
    lines = output_lines(output)
    return [f"no output line matches {p.pattern!r}" for p in expect if not any(p.search(line) for line in lines)]


def host_files_problem(share: Path, *, must_exist: tuple[str, ...], must_not_exist: tuple[str, ...]) -> str | None:
    """None when the share on the host holds what it must and lacks what it must not."""
    for name in must_exist:
        if not (share / name).exists():
            return f"{name} did not reach the host (it must exist in the shared directory after the boot)"
    for name in must_not_exist:
        if (share / name).exists():
            return f"{name} reached the host (it must not exist in the shared directory after the boot)"
    return None


def status_problem(got: int | None, expected: int, *, expected_is: str) -> str | None:
    """None when the launcher's exit status is the expected one; ``expected_is`` says where that came from."""
    if got != expected:
        return f"the launcher reported exit status {got}, {expected_is} {expected}"
    return None


def declared_problems(evidence: Evidence) -> list[str]:
    """Everything a scenario declares that did not hold, the first one first."""
    scenario, result = evidence.scenario, evidence.result
    problems = unmatched_expectations(result.output, scenario.expect)
    host = host_files_problem(evidence.share, must_exist=scenario.must_exist, must_not_exist=scenario.must_not_exist)
    problems += [host] if host else []
    status = status_problem(result.status, scenario.exit_status, expected_is="the scenario expects")
    return problems + ([status] if status else [])


# -- ccvm's own cases, over the stub's facts -------------------------------------------


def _unhex(value: str) -> str:
    return bytes.fromhex(value).decode("utf-8", errors="surrogateescape")


def check_argv(evidence: Evidence) -> str | None:
    """None when the scenario's arguments arrived verbatim, else what differs."""
    facts, expected = evidence.facts, evidence.scenario.args
    if facts.get("argc") != str(len(expected)):
        return f"argc: expected {len(expected)}, the stub saw {facts.get('argc', 'nothing')}"
    for index, want in enumerate(expected):
        raw = facts.get(f"argv.{index}")
        got = None if raw is None else _unhex(raw)
        if got != want:
            return f"argv[{index}]: expected {want!r}, the stub saw {got!r}"
    return None


def _both_ways(evidence: Evidence) -> str | None:
    facts, probe = evidence.facts, evidence.scenario.prepare.get(PROBE_FILE, "")
    read = facts.get("share.read")
    if read is None or read == "missing":
        return "host -> guest: the stub could not see the host's probe file"
    if _unhex(read) != probe:
        return f"host -> guest: the probe file reads {_unhex(read)!r}, expected {probe!r}"
    if facts.get("share.write") != "ok":
        return "the guest could not write to its working directory"
    return None


def check_share(evidence: Evidence) -> str | None:
    """The share works both ways the scenario says: read-only overlay, or writable 9p."""
    scenario = evidence.scenario
    writable = scenario.share == "writable"
    problem = _both_ways(evidence)
    if problem:
        return problem
    fstype, expected = evidence.facts.get("share.fstype"), "9p" if writable else "overlay"
    mode = "writable share" if writable else "default share"
    if fstype != expected:
        return f"{mode}: the working directory is {fstype!r}, expected {expected}"
    unmatched = unmatched_expectations(evidence.result.output, scenario.expect)
    if unmatched:
        return f"{mode}: {unmatched[0]}"
    problem = host_files_problem(evidence.share, must_exist=scenario.must_exist, must_not_exist=scenario.must_not_exist)
    if problem:
        return f"guest -> host, {mode}: {problem}"
    if GUEST_FILE in scenario.must_exist and (evidence.share / GUEST_FILE).read_text(encoding="utf-8") != (
        scenario.env.get(TOKEN_VARIABLE)
    ):
        return "guest -> host: the file on the host does not hold what the guest wrote"
    return None


def check_status(evidence: Evidence) -> str | None:
    return status_problem(evidence.result.status, evidence.scenario.exit_status, expected_is="the stub exited")


CASE_CHECKS: dict[str, Check] = {
    "argv-verbatim": check_argv,
    "share-overlay": check_share,
    "exit-status": check_status,
    "share-writable": check_share,
}


# -- the judge ---------------------------------------------------------------------------


def case_names(scenario: BootScenario) -> tuple[str, ...]:
    """The JUnit cases judged on one boot of the scenario."""
    return scenario.cases or (scenario.name,)


def _output_tail(result: LaunchResult) -> str:
    return f"--- last {TAIL_LINES} lines of the program's output ---\n" + "\n".join(
        output_lines(result.output)[-TAIL_LINES:]
    )


def _case(name: str, problems: list[str], result: LaunchResult, share_of_seconds: float) -> Case:
    details = "\n".join([*problems[1:], _output_tail(result)]) if problems else ""
    return Case(
        name=name,
        outcome=Outcome.FAIL if problems else Outcome.PASS,
        seconds=share_of_seconds,
        message=problems[0] if problems else "",
        details=details,
        output=result.shown_output(),
    )


def judge(scenario: BootScenario, result: LaunchResult, share: Path) -> list[Case]:
    """The cases of one boot.  A boot's time is shared out among the cases judged on it."""
    names = case_names(scenario)
    seconds = result.seconds / len(names)
    if result.problem:  # the boot itself failed: every case judged on it, with the reason
        message = result.problem if names == (scenario.name,) else f"{scenario.name} boot: {result.problem}"
        return [
            Case(
                name=name,
                outcome=Outcome.FAIL,
                seconds=seconds,
                message=message,
                details=result.details,
                output=result.shown_output(),
            )
            for name in names
        ]
    evidence = Evidence(scenario=scenario, result=result, share=share, facts=parse_facts(result.output))
    if not scenario.cases:
        return [_case(scenario.name, declared_problems(evidence), result, seconds)]
    cases = []
    for name in scenario.cases:
        problem = CASE_CHECKS[name](evidence)
        cases.append(_case(name, [problem] if problem else [], result, seconds))
    return cases


def not_run(scenario: BootScenario, message: str, details: str = "") -> list[Case]:
    """The scenario's cases when its boot never ran (the launcher could not be built, the run stopped)."""
    return [Case(name=name, outcome=Outcome.FAIL, message=message, details=details) for name in case_names(scenario)]
