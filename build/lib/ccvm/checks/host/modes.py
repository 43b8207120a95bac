"""Mode selection in the host suite.

Share modes come from the declaration: each switch (a flag or a variable)
must change what the dry run reports.  In a plan that is ``share.mode``;
for a scratch-directory dry run it is anything it printed or staged
(compared with the run without the switch).  ccvm vm's own options
(shell, debug, accel, memory...) are read from the plan, so they are
skipped for a wrapper whose dry run prints a scratch directory.
"""

from __future__ import annotations

from collections.abc import Callable

from ccvm.checks.host.sandbox import CaseSkipped, Sandbox, expect, one_line_error
from ccvm.matrix.launcher import DryRunStyle, ShareSwitch

Check = Callable[[], None]


def _switch_case(box: Sandbox, switch: ShareSwitch, by: str) -> Check:
    def check():
        args = [switch.flag] if by == "flag" else []
        env = {switch.variable: switch.value} if by == "variable" else {}
        switched = box.dry(*args, *box.launcher.program, env=env)
        if switched.plan is not None:
            got = (switched.plan.get("share") or {}).get("mode")
            expect(got == switch.mode, f"share.mode is {got!r} with {_how(switch, by)}, expected {switch.mode!r}")
            return
        default = box.dry(*box.launcher.program)
        expect(
            switched.fingerprint() != default.fingerprint(),
            f"{_how(switch, by)} changed nothing the dry run printed or staged",
        )

    return check


def _how(switch: ShareSwitch, by: str) -> str:
    return switch.flag if by == "flag" else f"{switch.variable}={switch.value}"


def _default_case(box: Sandbox, switch: ShareSwitch) -> Check:
    def check():
        if box.style is not DryRunStyle.PLAN:
            raise CaseSkipped("a scratch-directory dry run names no share mode; the switch cases compare against it")
        got = (box.dry(*box.launcher.program).plan.get("share") or {}).get("mode")
        expect(got == switch.mode, f"share.mode is {got!r} with no switch, expected {switch.mode!r}")

    return check


def _undeclared() -> None:
    raise CaseSkipped("no share modes are declared (share: in matrix/launcher.yaml)")


def share_cases(box: Sandbox) -> dict[str, Check]:
    modes = box.launcher.share_modes
    if box.style is DryRunStyle.SCRATCH_DIR and not box.launcher.declared:
        modes = ()  # ccvm vm's switches say nothing about a wrapper that prints no plan
    if not modes:
        return {"share-modes": _undeclared}
    cases: dict[str, Check] = {}
    for switch in modes:
        if switch.is_default:
            cases[f"share-default-is-{switch.mode}"] = _default_case(box, switch)
        for by in ("flag", "variable"):
            if getattr(switch, by) is not None:
                cases[f"share-{switch.mode}-{by}"] = _switch_case(box, switch, by)
    return cases


def _field(plan: dict, key: str):
    value = plan
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _plan_field(box: Sandbox, args: tuple[str, ...], env: dict[str, str], key: str, want) -> Check:
    def check():
        if box.style is not DryRunStyle.PLAN:
            raise CaseSkipped(f"ccvm vm's option ({key} in the plan); this dry run prints no plan")
        got = _field(box.dry(*args, env=env).plan, key)
        expect(got == want, f"{key} is {got!r}, expected {want!r}")

    return check


def _invalid(box: Sandbox, args: tuple[str, ...], env: dict[str, str], naming: str) -> Check:
    def check():
        if box.style is not DryRunStyle.PLAN:
            raise CaseSkipped(f"ccvm vm's validation of {naming}; the declaration does not say the wrapper has it")
        one_line_error(box.launch(*args, env=env), naming)

    return check


def ccvm_option_cases(box: Sandbox) -> dict[str, Check]:
    run_ = ("prog",)
    field = lambda *a: _plan_field(box, *a)  # noqa: E731 - a table of cases reads best in one column
    invalid = lambda *a: _invalid(box, *a)  # noqa: E731
    return {
        "default-is-run": field(run_, {}, "mode", "run"),
        "shell-flag": field(("--shell",), {}, "mode", "shell"),
        "shell-env": field((), {"CCVM_SHELL": "1"}, "mode", "shell"),
        "debug-flag": field(("--ccvm-debug", "prog"), {}, "mode", "debug"),
        "debug-env": field(run_, {"CCVM_DEBUG": "1"}, "mode", "debug"),
        "accel-default-from-matrix": field(run_, {}, "accel", "tcg"),
        "accel-env-beats-default": field(run_, {"CCVM_ACCEL": "kvm"}, "accel", "kvm"),
        "accel-flag-beats-env": field(("--accel", "tcg", "prog"), {"CCVM_ACCEL": "kvm"}, "accel", "tcg"),
        "machine-env": field(("--arch", "aarch64", "prog"), {"CCVM_MACHINE": "virt"}, "machine", "virt"),
        "memory-flag-beats-env": field(("--memory", "1G", "prog"), {"CCVM_MEMORY": "768M"}, "memory_mib", 1024),
        "cores-env": field(run_, {"CCVM_CORES": "3"}, "cores", 3),
        "invalid-accel-env": invalid(run_, {"CCVM_ACCEL": "foo"}, "CCVM_ACCEL"),
        "invalid-accel-flag": invalid(("--accel", "foo", "prog"), {}, "--accel"),
        "machine-not-fitting-arch": invalid(("--arch", "x86_64", "--machine", "virt", "prog"), {}, "--machine"),
        "memory-not-a-size": invalid(("--memory", "lots", "prog"), {}, "--memory"),
        "invalid-shell-env": invalid(run_, {"CCVM_SHELL": "maybe"}, "CCVM_SHELL"),
    }
