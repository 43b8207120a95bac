"""A project's own host test scripts, each result line its own testcase.

Each script runs with the interpreter its ``#!`` line names (the kernel's
rule: the interpreter and at most one argument), from the project root,
with ``CCVM`` set to a dry-run wrapper (the seed's convention: the
launcher with its dry-run hook switched on) and ``HOME`` a fixture home
holding planted credentials.  It runs under a timeout and is killed with
its whole process group when it does not finish.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

from ccvm.checks.host.result_lines import ParsedOutput, parse_output
from ccvm.checks.host.sandbox import Sandbox
from ccvm.launcher.dryrun import IgnoredHook, NotRunAgain
from ccvm.processes import Completed, find_program
from ccvm.report.results import Case, Outcome, Suite

DEFAULT_SCRIPT_TIMEOUT_S = 600.0
TAIL_LINES = 15


class NoInterpreter(Exception):
    pass


def interpreter_of(script: Path) -> list[str]:
    """The interpreter (and its one argument) named by the script's #! line."""
    try:
        with script.open("rb") as handle:
            first = handle.readline(4096)
    except OSError as exc:
        raise NoInterpreter(f"cannot read {script}: {exc.strerror}") from None
    if not first.startswith(b"#!"):
        raise NoInterpreter(
            f"{script} has no #! line; start it with one naming its interpreter, e.g. #!/usr/bin/env bash"
        )
    words = first[2:].decode("utf-8", "surrogateescape").strip().split(None, 1)
    if not words:
        raise NoInterpreter(f"{script}: the #! line names no interpreter")
    if not os.access(words[0], os.X_OK):
        raise NoInterpreter(f"{script}: its interpreter {words[0]} is not an executable file on this host")
    if Path(words[0]).name == "env" and len(words) > 1:
        program = words[1].split()[0]
        if not program.startswith("-") and find_program(program, path_only=True) is None:
            raise NoInterpreter(f"{script}: its interpreter {program} (#!{words[0]} {program}) is not on PATH")
    return words


def write_dryrun_wrapper(box: Sandbox, path: Path) -> Path:
    """An executable that runs the launcher with its dry-run hook on: $CCVM for the scripts.
    Each dry run is held to the dry-run timeout (coreutils' timeout, where it is), so a hanging
    launcher fails the script's lines in seconds instead of holding it to the script timeout."""
    hook = box.launcher.dry_run
    words = " ".join(shlex.quote(word) for word in box.wrapper)
    limit = find_program("timeout", path_only=True)
    bounded = f"{shlex.quote(limit)} --kill-after=5 {box.timeout_s:g} " if limit else ""
    path.write_text(
        f'#!/bin/sh\n{hook.variable}={shlex.quote(hook.value)}\nexport {hook.variable}\nexec {bounded}{words} "$@"\n'
    )
    os.chmod(path, 0o700)
    return path


def _tail(box: Sandbox, result: Completed) -> str:
    lines = (result.stdout + result.stderr).rstrip().splitlines()
    return box.markers.redact("\n".join(lines[-TAIL_LINES:]))


def _result_cases(box: Sandbox, parsed: ParsedOutput) -> list[Case]:
    return [
        Case(
            name=line.name,
            outcome=line.outcome,
            message=box.markers.redact(line.message),
            output=box.markers.redact(line.line) + f"  [{line.stream}]",
        )
        for line in parsed.results
    ]


def _consistency_cases(box: Sandbox, parsed: ParsedOutput, result: Completed, timeout_s: float) -> list[Case]:
    cases = []
    failing = sum(line.outcome is Outcome.FAIL for line in parsed.results)
    passing = sum(line.outcome is Outcome.PASS for line in parsed.results)
    tail = _tail(box, result)
    if result.returncode is None:
        cases.append(_fail("timeout", f"did not finish within {timeout_s:g}s; killed with its process group", tail))
    elif result.returncode != 0 and failing == 0:
        cases.append(_fail("exit-status", f"exited {result.returncode} without a failing result line", tail))
    if parsed.bail is not None:
        cases.append(_fail("bail-out", f"Bail out! {box.markers.redact(parsed.bail)}", tail))
    tap_lines = sum(line.tap and line.stream == parsed.plan_stream for line in parsed.results)
    if parsed.plan is not None and parsed.plan_skip is None and parsed.plan != tap_lines:
        cases.append(_fail("tap-plan", f"the plan says 1..{parsed.plan}, {tap_lines} TAP results were printed", tail))
    if parsed.summary is not None and parsed.summary != (passing, failing):
        said = f"{parsed.summary[0]} passed, {parsed.summary[1]} failed"
        cases.append(
            _fail("summary", f"the script says {said}; its lines show {passing} passed, {failing} failed", tail)
        )
    return cases


def _fail(name: str, message: str, details: str) -> Case:
    return Case(name=name, outcome=Outcome.FAIL, message=message, details=details)


def script_suite(box: Sandbox, script: Path, *, name: str, root: Path, env: dict[str, str], timeout_s: float) -> Suite:
    suite = Suite(name=f"host.script.{name}")
    started = time.monotonic()
    try:
        argv = [*interpreter_of(script), str(script)]
    except NoInterpreter as exc:
        suite.cases.append(Case(name="interpreter", outcome=Outcome.FAIL, message=str(exc)))
        return suite
    runner = script.relative_to(root).as_posix() if script.is_relative_to(root) else script.name
    booted = ""
    try:
        result = box.guard.run(
            argv, launcher=box.launcher, program=box.wrapper, timeout_s=timeout_s, cwd=str(root), env=env, runner=runner
        )
    except NotRunAgain as exc:
        suite.cases.append(Case(name="dry-run-hook", outcome=Outcome.SKIP, message=str(exc)))
        return suite
    except IgnoredHook as exc:  # the script's tree was stopped: its lines so far, and why
        result, booted = exc.completed, str(exc)
    parsed = parse_output(result.stdout, result.stderr)
    suite.cases += _result_cases(box, parsed)
    if booted:
        suite.cases.append(_fail("dry-run-hook", booted, _tail(box, result)))
    else:
        suite.cases += _consistency_cases(box, parsed, result, timeout_s)
    if not suite.cases:
        reason = f"SKIP {parsed.plan_skip}" if parsed.plan_skip else "exit status 0, no result lines"
        outcome = Outcome.SKIP if parsed.plan_skip else Outcome.PASS
        suite.cases.append(Case(name="exit-status", outcome=outcome, message=reason, output=_tail(box, result)))
    seconds = time.monotonic() - started
    for case in suite.cases:
        case.seconds = seconds / len(suite.cases)
        _redact_case(case, box)  # a script may print a planted secret anywhere, its result lines' names included
    suite.properties["interpreter"] = " ".join(argv[:-1])
    return suite


def _redact_case(case: Case, box: Sandbox) -> None:
    for field in ("name", "message", "details", "output"):
        setattr(case, field, box.markers.redact(getattr(case, field)))
