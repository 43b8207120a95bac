"""The definition-of-done gate: from a change (``gitchange``) and the rules in
matrix/gate.yaml (``gate_rules``) to the checks it requires, run in
parallel, each with a timeout, reported as a checklist and JUnit.

Each requirement ends as pass, fail, skipped (with the reason) or needs a
human.  Only pass counts: the gate passes when every requirement passed.
"""

from __future__ import annotations

import enum
import os
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ccvm import processes
from ccvm.ci import attest, gitchange
from ccvm.errors import UsageError
from ccvm.matrix.gate_rules import TTY_ATTESTATION, CheckDef, GateRules
from ccvm.processes import find_program
from ccvm.report.junit import BASELINE_SKIP
from ccvm.report.results import Case, Outcome, Suite

OUTPUT_TAIL_LINES = 15  # lines of a failed check's output shown in the checklist


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skipped"
    HUMAN = "needs a human"


@dataclass(frozen=True, kw_only=True)
class Requirement:
    name: str
    check: CheckDef | None  # None: met by a person (an attestation), not by running anything
    because: tuple[str, ...]  # the changed paths that require it
    reproduce: str


@dataclass(frozen=True, kw_only=True)
class Plan:
    base_ref: str
    merge_base: str
    tree: str
    changed: tuple[str, ...]
    unmatched: tuple[str, ...]  # changed paths no rule names (they get the rules' `otherwise`)
    requirements: tuple[Requirement, ...]


@dataclass(frozen=True, kw_only=True)
class Result:
    requirement: Requirement
    status: Status
    reason: str = ""
    seconds: float = 0.0
    output: str = ""
    log_path: str = ""


# --- planning ----------------------------------------------------------------------------------------------------


def tty_reproduce() -> str:
    return 'ccvm vm --shell, then: ccvm attest tty --note "what you checked"'


def required_checks(rules: GateRules, changed: tuple[str, ...]) -> tuple[dict[str, list[str]], tuple[str, ...]]:
    """check name -> the changed paths requiring it (in gate.yaml's check
    order), and the paths no rule matched."""
    because: dict[str, list[str]] = {}
    unmatched = []
    for path in changed:
        matching = [rule for rule in rules.rules if rule.matches(path)]
        if not matching:
            unmatched.append(path)
        names = [name for rule in matching for name in rule.require] or list(rules.otherwise)
        for name in names:
            paths = because.setdefault(name, [])
            if path not in paths:
                paths.append(path)
    ordered = {check.name: because[check.name] for check in rules.checks if check.name in because}
    return ordered, tuple(unmatched)


def plan_change(rules: GateRules, *, base_ref: str, merge_base: str, tree: str, changed: tuple[str, ...]) -> Plan:
    by_check, unmatched = required_checks(rules, changed)
    requirements = [
        Requirement(name=name, check=rules.check(name), because=tuple(paths), reproduce=rules.check(name).reproduce)
        for name, paths in by_check.items()
    ]
    terminal = tuple(path for path in changed if any(glob.matches(path) for glob in rules.terminal))
    if terminal:
        requirements.append(Requirement(name=TTY_ATTESTATION, check=None, because=terminal, reproduce=tty_reproduce()))
    return Plan(
        base_ref=base_ref,
        merge_base=merge_base,
        tree=tree,
        changed=changed,
        unmatched=unmatched,
        requirements=tuple(requirements),
    )


def plan_for_repo(root: Path, rules: GateRules, base: str | None = None) -> Plan:
    found = gitchange.merge_base(root, base or rules.base)
    return plan_change(
        rules,
        base_ref=found.ref,
        merge_base=found.commit,
        tree=gitchange.tree_hash(root),
        changed=gitchange.changed_paths(root, found.commit),
    )


# --- the human requirement ---------------------------------------------------------------------------------------


def _automated_line(root: Path, tree: str) -> str:
    """What the machine's part says about this tree: it stands beside a person's word, never for it."""
    found = attest.current_automated(root, "tty", tree)
    if found is None:
        return f"no automated check on this tree; run: {attest.AUTOMATED['tty']}"
    return found.summary()


def check_attestation(root: Path, requirement: Requirement, tree: str) -> Result:
    found = attest.current(root, "tty", tree)
    automated = _automated_line(root, tree)
    if found:
        return Result(
            requirement=requirement,
            status=Status.PASS,
            reason=f"attested by {found.name} <{found.email}> at {found.at}: {found.note}\n{automated}",
        )
    lines = [
        f"this change touches terminal code ({_some(requirement.because)}); tree {tree[:12]} has no tty attestation"
    ]
    last = attest.latest(root, "tty")
    if last:
        lines.append(
            f"the last one ({last.name}, {last.at}) was made on tree {last.tree[:12]}; the tree has changed since"
        )
    lines.append(automated)
    lines.append(f"to attest: {attest.KINDS['tty']};")
    lines.append('then run: ccvm attest tty --note "what you checked"')
    return Result(requirement=requirement, status=Status.HUMAN, reason="\n".join(lines))


def _some(paths: tuple[str, ...], shown: int = 3) -> str:
    return ", ".join(paths[:shown]) + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


# --- running checks ----------------------------------------------------------------------------------------------


def resolve_argv(run: tuple[str, ...]) -> list[str]:
    """A leading "ccvm" runs this ccvm under this interpreter; "python" is this interpreter."""
    head, rest = run[0], list(run[1:])
    if head == "ccvm":
        return [sys.executable, "-m", "ccvm", *rest]
    if head == "python":
        return [sys.executable, *rest]
    return [head, *rest]


def check_env(matrix_root: Path) -> dict[str, str]:
    """The checks' environment: this one, minus the repository location git
    sets for hooks, plus the matrix the gate read."""
    return {**gitchange.env_without_repo_location(), "CCVM_MATRIX": str(matrix_root.resolve())}


def junit_verdict(path: Path) -> tuple[Status, str]:
    """What a passing check's own JUnit file says: pass only when it has
    cases and none of them failed or was skipped.  A case skipped because
    its findings are all in the adoption baseline (``type="baseline"``)
    ran: only new findings fail, and it had none."""
    if not path.is_file():
        return Status.FAIL, f"the check exited 0 but wrote no JUnit at {path}"
    try:
        cases = list(ET.parse(path).iter("testcase"))
    except (ET.ParseError, OSError) as exc:
        return Status.FAIL, f"the check's JUnit at {path} is unreadable: {exc}"
    if not cases:
        return Status.FAIL, f"the check's JUnit at {path} has no test cases"
    for tag, status in (("failure", Status.FAIL), ("error", Status.FAIL), ("skipped", Status.SKIP)):
        for case in cases:
            found = case.find(tag)
            if found is not None and not (tag == "skipped" and found.get("type") == BASELINE_SKIP):
                why = found.get("message") or (found.text or "").strip() or "no reason given"
                verb = "skipped" if status is Status.SKIP else "failed"
                return status, f"{case.get('classname', '')} {case.get('name', '?')} {verb}: {why}".strip()
    return Status.PASS, ""


def _found(head: str, root: Path, path: str | None) -> bool:
    if "/" in head:
        candidate = Path(head) if Path(head).is_absolute() else root / head
        return candidate.is_file() and os.access(candidate, os.X_OK)
    return find_program(head, search_path=path) is not None


def _write_log(log_path: Path, argv: list[str], done: processes.Completed, seconds: float) -> str:
    status = "timed out" if done.returncode is None else f"exit status {done.returncode}"
    header = f"$ {' '.join(argv)}\n# {status} after {seconds:.1f}s\n"
    text = f"{header}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(text, encoding="utf-8", errors="replace")
    except OSError as exc:  # raised in a worker; run_plan re-raises it on the main thread, which stops the rest
        raise UsageError(f"--reports: cannot write the check log {log_path}: {exc.strerror or exc}") from None
    return done.stdout + done.stderr


def run_check(requirement: Requirement, *, root: Path, env: dict[str, str], log_dir: Path) -> Result:
    check = requirement.check
    assert check is not None
    argv = resolve_argv(check.run)
    if not _found(argv[0], root, env.get("PATH")):
        where = "" if "/" in argv[0] else " on PATH"
        return Result(requirement=requirement, status=Status.SKIP, reason=f"cannot run: {argv[0]} not found{where}")
    junit = root / check.junit if check.junit else None
    if junit:
        junit.unlink(missing_ok=True)  # a stale file from an earlier run must not count
    started = time.monotonic()
    try:
        done = processes.run(argv, timeout_s=check.timeout_s, cwd=str(root), env=env)
    except OSError as exc:
        return Result(requirement=requirement, status=Status.SKIP, reason=f"cannot run {argv[0]}: {exc.strerror}")
    seconds = time.monotonic() - started
    log_path = log_dir / f"{check.name}.log"
    output = _write_log(log_path, argv, done, seconds)
    common = {"requirement": requirement, "seconds": seconds, "output": output, "log_path": str(log_path)}
    if done.returncode is None:
        return Result(status=Status.FAIL, reason=f"timed out after {check.timeout_s:g}s and was killed", **common)
    if done.returncode != 0:
        return Result(status=Status.FAIL, reason=f"exited with status {done.returncode}", **common)
    status, reason = junit_verdict(junit) if junit else (Status.PASS, "")
    return Result(status=status, reason=reason, **common)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    root: Path
    matrix_root: Path
    log_dir: Path
    jobs: int


def run_plan(plan: Plan, options: RunOptions, on_done: Callable[[Result], None] = lambda _r: None) -> list[Result]:
    """Every requirement's result, in plan order; checks run on a bounded pool."""
    env = check_env(options.matrix_root)
    results: dict[str, Result] = {}

    def finish(result: Result) -> None:  # called on this thread only
        results[result.requirement.name] = result
        on_done(result)

    for requirement in plan.requirements:
        if requirement.check is None:
            finish(check_attestation(options.root, requirement, plan.tree))
    to_run = [r for r in plan.requirements if r.check is not None]
    pool = ThreadPoolExecutor(max_workers=max(1, options.jobs), thread_name_prefix="gate")
    try:
        futures = [pool.submit(run_check, r, root=options.root, env=env, log_dir=options.log_dir) for r in to_run]
        for future in as_completed(futures):
            finish(future.result())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        processes.stop_all()  # the running checks' process groups: their threads then return at once
        raise
    pool.shutdown(wait=True)
    return [results[r.name] for r in plan.requirements]


def passed(results: list[Result]) -> bool:
    return all(result.status is Status.PASS for result in results)


# --- reporting ---------------------------------------------------------------------------------------------------

_MARKS = {Status.PASS: "[x]", Status.FAIL: "[!]", Status.SKIP: "[-]", Status.HUMAN: "[?]"}


def _tail(text: str, lines: int) -> list[str]:
    return [line for line in text.rstrip().splitlines()[-lines:]]


def checklist(results: list[Result]) -> str:
    width = max((len(r.requirement.name) for r in results), default=0)
    lines = []
    for result in results:
        seconds = f"{result.seconds:6.1f}s" if result.requirement.check else "       "
        lines.append(f"{_MARKS[result.status]} {result.requirement.name.ljust(width)}  {seconds}  {result.status}")
        if result.reason and (result.status is not Status.PASS or result.requirement.check is None):
            lines.extend(f"      {line}" for line in result.reason.splitlines())
        if result.status is Status.FAIL:
            lines.extend(f"      | {line}" for line in _tail(result.output, OUTPUT_TAIL_LINES))
            if result.log_path:
                lines.append(f"      log: {result.log_path}")
    return "\n".join(lines)


def reproduce_lines(results: list[Result]) -> list[str]:
    return [f"  {r.requirement.name}: {r.requirement.reproduce}" for r in results if r.status is not Status.PASS]


def change_line(plan: Plan) -> str:
    return f"change: {len(plan.changed)} path(s) against {plan.base_ref} (merge base {plan.merge_base[:12]})"


def plan_lines(plan: Plan, attested: attest.Attestation | None = None) -> list[str]:
    """The checklist the change requires, for --plan: nothing has run."""
    lines = [change_line(plan)]
    if plan.unmatched:
        lines.append(f"no rule names {_some(plan.unmatched)}: the rules' otherwise checks apply")
    if not plan.requirements:
        lines.append("nothing required")
    width = max((len(r.name) for r in plan.requirements), default=0)
    for requirement in plan.requirements:
        if requirement.check:
            mark, what = "[ ]", f"runs: {' '.join(requirement.check.run)}"
        elif attested:
            mark, what = "[x]", f"attested by {attested.name} at {attested.at}"
        else:
            mark, what = "[?]", f"needs a human: {requirement.reproduce}"
        lines.append(f"{mark} {requirement.name.ljust(width)}  {what}")
        lines.append(f"    {' ' * width}  because: {_some(requirement.because)}")
    return lines


def plan_json(plan: Plan, attested: attest.Attestation | None) -> dict[str, object]:
    def one(requirement: Requirement) -> dict[str, object]:
        entry: dict[str, object] = {
            "name": requirement.name,
            "because": list(requirement.because),
            "reproduce": requirement.reproduce,
        }
        if requirement.check:
            entry |= {"kind": "check", "run": list(requirement.check.run), "timeout": requirement.check.timeout_s}
        else:
            entry |= {"kind": "human", "attested": attested is not None}
        return entry

    return {
        "base": plan.base_ref,
        "merge_base": plan.merge_base,
        "tree": plan.tree,
        "changed": list(plan.changed),
        "unmatched": list(plan.unmatched),
        "requirements": [one(r) for r in plan.requirements],
    }


_OUTCOME = {Status.PASS: Outcome.PASS, Status.FAIL: Outcome.FAIL, Status.SKIP: Outcome.SKIP, Status.HUMAN: Outcome.FAIL}


def to_suites(results: list[Result], prefix: str = "gate.") -> list[Suite]:
    suites = []
    for result in results:
        requirement = result.requirement
        message = " ".join(result.reason.splitlines())
        if result.status is Status.HUMAN:
            message = f"{result.status}: {message}"
        case = Case(
            name=requirement.name,
            outcome=_OUTCOME[result.status],
            seconds=result.seconds,
            message=message,
            details="\n".join(_tail(result.output, 200)) if result.status is Status.FAIL else "",
        )
        properties = {"reproduce": requirement.reproduce, "because": " ".join(requirement.because)}
        if requirement.check:
            properties["command"] = " ".join(requirement.check.run)
        suites.append(
            Suite(name=f"{prefix}{requirement.name}", cases=[case], properties=properties, log_path=result.log_path)
        )
    return suites
