"""A project's own host test scripts, each result line its own testcase.

Each script runs with the interpreter its ``#!`` line names (the kernel's
rule: the interpreter and at most one argument), from the project root,
with ``CCVM`` (or the declared ``launcher_variable``) set to the
launcher's own path, unchanged, so a script can run it and read it, and
``HOME`` a fixture home holding planted credentials.  It runs under a
timeout and is killed with its whole process group when it does not
finish.  Every dry run it starts is held to the dry-run time limit: a
process of the script's session that runs the launcher (or that the
launcher replaced itself with) is stopped, with what it started, once it
has run that long, and that is a failing case.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ccvm.checks.host.result_lines import ParsedOutput, parse_output
from ccvm.checks.host.sandbox import Sandbox
from ccvm.launcher.dryrun import IgnoredHook, NotRunAgain
from ccvm.processes import Completed, ProcessInfo, descendants, find_program, session_processes, stop_processes
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


def launcher_for_scripts(box: Sandbox, directory: Path) -> str:
    """What $CCVM names: the launcher's own program, unchanged, when its argv is that one word.  An
    argv of more words (ccvm vm: python -m ccvm vm) gets a two-line script running it, with no hook
    of its own: the scripts switch the dry run on as they would for the launcher itself."""
    if len(box.wrapper) == 1:
        return box.wrapper[0]
    path = directory / "launcher"
    # It stays the parent of the argv (no exec), so the dry-run watch knows its command line.
    path.write_text(f'#!/bin/sh\n{" ".join(shlex.quote(word) for word in box.wrapper)} "$@"\n')
    os.chmod(path, 0o700)
    return str(path)


POLL_S = 0.2  # how often the dry-run watch looks at a script's processes


class DryRunWatch:
    """The dry-run time limit, held around a script's session: each process that runs the launcher
    (its command line names it, or it is the launcher's executable) is stopped with everything under
    it once it has run ``limit_s`` since it was first seen.  ``stopped`` says what was stopped."""

    def __init__(self, launcher: str, limit_s: float):
        self.target = os.path.realpath(launcher)
        self.limit_s = limit_s
        self.stopped: list[str] = []
        self._seen: dict[tuple[int, int], float] = {}  # (pid, start) of a dry run -> when first seen
        self._done = threading.Event()

    @contextlib.contextmanager
    def around(self, session: int) -> Iterator[None]:
        thread = threading.Thread(target=self._watch, args=(session,), name="dry-run-watch", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._done.set()
            thread.join()

    def _runs_launcher(self, info: ProcessInfo) -> bool:
        """Its executable is the launcher; or its command line names it (an interpreted launcher: the
        interpreter, then after at most one argument the launcher's path); or bash started it as the
        launcher (`_`), which still says so after the launcher replaced itself with another program."""
        words = [info.exe, *info.argv[:3], info.launched_as]
        return any(word and os.path.realpath(os.path.join(info.cwd or "/", word)) == self.target for word in words)

    def _watch(self, session: int) -> None:
        while not self._done.wait(POLL_S):
            table = session_processes(session)
            now = time.monotonic()
            for info in table:
                key = (info.pid, info.started)
                if key not in self._seen and self._runs_launcher(info):
                    self._seen[key] = now
            for info in table:
                first = self._seen.get((info.pid, info.started))
                if first is not None and now - first >= self.limit_s:
                    self._stop(info, table)

    def _stop(self, info: ProcessInfo, table: list[ProcessInfo]) -> None:
        self._seen.pop((info.pid, info.started))
        stop_processes(descendants(info.pid, table))
        self.stopped.append(shlex.join(info.argv)[:300])


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
    elif result.returncode < 0:
        signame = _signal_name(-result.returncode)
        cases.append(
            _fail("exit-status", f"was killed by {signame}; what was left of its process group was stopped", tail)
        )
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


def _signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name} (signal {number})"
    except ValueError:
        return f"signal {number}"


def _fail(name: str, message: str, details: str) -> Case:
    return Case(name=name, outcome=Outcome.FAIL, message=message, details=details)


def _stopped_cases(box: Sandbox, watch: DryRunWatch) -> list[Case]:
    return [
        _fail(
            "dry-run-timeout" if index == 0 else f"dry-run-timeout ({index + 1})",
            f"a dry run did not finish within {box.timeout_s:g}s and was stopped with what it started: {argv}",
            "",
        )
        for index, argv in enumerate(watch.stopped)
    ]


def script_suite(
    box: Sandbox, script: Path, *, name: str, root: Path, env: dict[str, str], timeout_s: float, launcher: str
) -> Suite:
    """Run one script (``launcher``: what its $CCVM names) and make its suite."""
    suite = Suite(name=f"host.script.{name}")
    started = time.monotonic()
    try:
        argv = [*interpreter_of(script), str(script)]
    except NoInterpreter as exc:
        suite.cases.append(Case(name="interpreter", outcome=Outcome.FAIL, message=str(exc)))
        return suite
    runner = script.relative_to(root).as_posix() if script.is_relative_to(root) else script.name
    watch = DryRunWatch(launcher, box.timeout_s)
    booted = ""
    try:
        result = box.guard.run(
            argv,
            launcher=box.launcher,
            program=(launcher,),
            timeout_s=timeout_s,
            cwd=str(root),
            env=env,
            runner=runner,
            watch=watch.around,
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
    suite.cases += _stopped_cases(box, watch)
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
