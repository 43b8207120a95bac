"""The host dry-run suite: a launcher's contract, checked without booting
anything, through its dry-run hook.

The launcher is the one declared in matrix/launcher.yaml, one given with
``--wrapper``, or ccvm's own ``ccvm vm``.  First one dry run finds out
(or confirms) what the hook prints (``host.dry-run``); then each group of
cases (``host_cases``) runs in a sandbox of its own, and each project test
script (``host_scripts``) becomes a suite with one testcase per result line.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ccvm.checks.host.cases import GROUPS
from ccvm.checks.host.sandbox import CaseFailed, CaseSkipped, Sandbox, make_sandbox, new_markers, read_report
from ccvm.checks.host.scripts import DEFAULT_SCRIPT_TIMEOUT_S, launcher_for_scripts, script_suite
from ccvm.launcher.dryrun import DryRunGuard
from ccvm.launcher.resolve import host_cell_env, resolve_argv, unread_hook
from ccvm.matrix.launcher import DryRunStyle, Launcher
from ccvm.report.results import Case, Outcome, Suite
from ccvm.text import last_line

PREFLIGHT = "host.dry-run"


@dataclass(frozen=True, kw_only=True)
class HostRun:
    launcher: Launcher
    project_root: Path
    matrix: Path | None = None  # handed to the launcher as CCVM_MATRIX (ccvm vm needs it)
    scripts: tuple[Path, ...] = ()
    dry_run_timeout_s: float | None = None  # None: the declaration's
    script_timeout_s: float = DEFAULT_SCRIPT_TIMEOUT_S
    jobs: int = 4


def _detect_style(box: Sandbox) -> tuple[DryRunStyle | None, str]:
    """What the dry run prints, from one run: the style, or None and why."""
    declared = box.launcher.dry_run.prints
    try:
        result = box.launch(*box.launcher.program)
    except (CaseFailed, CaseSkipped) as exc:  # it booted, or left something running
        return None, box.markers.redact(str(exc))
    candidates = [declared] if declared else [DryRunStyle.PLAN, DryRunStyle.SCRATCH_DIR]
    why = ""
    for style in candidates:
        try:
            if style is DryRunStyle.PLAN and not declared:
                json.loads(result.stdout)
            read_report(dataclasses.replace(box, style=style), result)
            return style, ""
        except CaseFailed as exc:
            why = str(exc)
        except json.JSONDecodeError:
            continue
    looks_like_a_path = last_line(result.stdout).startswith("/")
    if not declared and result.returncode == 0 and result.stdout.strip() and not looks_like_a_path:
        why = f"it printed neither a JSON plan nor an existing directory (last line: {last_line(result.stdout)!r})"
    return None, box.markers.redact(why)


def _run_case(box: Sandbox, name: str, check: Callable[[], None]) -> Case:
    started = time.monotonic()
    outcome, message = Outcome.PASS, ""
    try:
        check()
    except CaseFailed as exc:
        outcome, message = Outcome.FAIL, str(exc)
    except CaseSkipped as exc:
        outcome, message = Outcome.SKIP, str(exc)
    except (KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
        outcome, message = (
            Outcome.FAIL,
            f"the dry run's report is not what this case reads ({type(exc).__name__}: {exc})",
        )
    return Case(name=name, outcome=outcome, seconds=time.monotonic() - started, message=box.markers.redact(message))


def _script_name(script: Path, root: Path) -> str:
    relative = script.relative_to(root).as_posix() if script.is_relative_to(root) else script.name
    return relative.replace("/", ".")


def _submit_scripts(pool, plan: HostRun, box: Sandbox) -> dict[str, concurrent.futures.Future]:
    launcher = launcher_for_scripts(box, box.root)
    env = box.env({box.launcher.launcher_variable: launcher})
    return {
        str(script): pool.submit(
            script_suite,
            box,
            script,
            name=_script_name(script, plan.project_root),
            root=plan.project_root,
            env=env,
            timeout_s=plan.script_timeout_s,
            launcher=launcher,
        )
        for script in plan.scripts
    }


def _skipped_groups(reason: str) -> list[Suite]:
    return [
        Suite(name=f"host.{group}", cases=[Case(name="(all)", outcome=Outcome.SKIP, message=reason)])
        for group in GROUPS
    ]


def run_host_suite(plan: HostRun) -> list[Suite]:
    launcher = plan.launcher
    fields = dict(
        launcher=launcher,
        wrapper=resolve_argv(launcher, plan.project_root),
        style=launcher.dry_run.prints or DryRunStyle.PLAN,
        markers=new_markers(launcher),
        matrix=plan.matrix,
        guard=DryRunGuard(),
        cell_env={} if launcher.embedded else host_cell_env(launcher),
        timeout_s=plan.dry_run_timeout_s or launcher.dry_run.timeout_s,
    )
    with tempfile.TemporaryDirectory(prefix="ccvm-host-suite-") as parent:
        probe = make_sandbox(Path(parent), **fields)
        started = time.monotonic()
        style, why = _detect_style(probe)
        seconds = time.monotonic() - started
        if style is None and (unread := unread_hook(launcher, probe.wrapper[0])):
            why = f"{unread} (the dry run: {why})"
        preflight = Case(
            name="prints-a-report",
            outcome=Outcome.PASS if style else Outcome.FAIL,
            seconds=seconds,
            message=f"prints {style}" if style else f"the dry run does not work: {why}",
        )
        suites = [Suite(name=PREFLIGHT, cases=[preflight])]
        with concurrent.futures.ThreadPoolExecutor(max_workers=plan.jobs) as pool:
            scripts = _submit_scripts(pool, plan, probe)
            if style is None:
                failed = f"the dry run itself failed (see {PREFLIGHT}/prints-a-report)"
                suites += _skipped_groups(probe.guard.not_run() if probe.guard.tripped else failed)
            else:
                fields["style"] = style
                suites += _run_groups(pool, Path(parent), fields)
            suites += [future.result() for future in scripts.values()]
        for suite in suites:
            suite.properties["launcher"] = launcher.name
        return suites


def _run_groups(pool, parent: Path, fields: dict) -> list[Suite]:
    futures = {}
    for group, build in GROUPS.items():
        box = make_sandbox(parent, **fields)
        futures[group] = {name: pool.submit(_run_case, box, name, check) for name, check in build(box).items()}
    return [Suite(name=f"host.{group}", cases=[f.result() for f in cases.values()]) for group, cases in futures.items()]
