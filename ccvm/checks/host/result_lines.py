"""Result lines out of a project's test script, each to become a testcase.

Two forms are read, on stdout and stderr alike:

- TAP (``ok 1 - name``, ``not ok 2 - name``, ``# SKIP``/``# TODO``
  directives, the ``1..N`` plan, ``Bail out!``), through the maintained
  TAP parser ``tap.py``;
- the common ``ok - name`` / ``FAIL - name`` / ``PASS: name`` form, in any
  case and spacing (``FAIL - name: why`` keeps ``why`` as the message).

A closing ``N passed, M failed`` line is kept so it can be checked
against the lines counted.  Every other line is output, not a result: a
diagnostic such as ``error: mirror slow, retrying`` on stderr fails
nothing (a script that fails says so with a result line or its exit
status).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tap.line import Bail, Plan, Result
from tap.parser import Parser

from ccvm.report.results import Outcome

_COMMON = re.compile(
    r"^\s*(?P<word>not\s+ok|ok|pass(?:ed)?|fail(?:ed)?)\s*(?:-|:)\s*(?P<name>\S.*?)\s*$", re.IGNORECASE
)
_SUMMARY = re.compile(
    r"^\W*(?P<passed>\d+)\s+pass(?:ed)?\s*[,;]\s*(?P<failed>\d+)\s+fail(?:ed|ures?)?\b", re.IGNORECASE
)
_PASSING = {"ok", "pass", "passed"}


@dataclass(frozen=True, kw_only=True)
class ResultLine:
    name: str
    outcome: Outcome
    message: str = ""  # why it failed or was skipped
    line: str = ""  # as printed
    stream: str = "stdout"
    tap: bool = True  # a TAP line (counted against the plan), else the common form


@dataclass(frozen=True, kw_only=True)
class ParsedOutput:
    results: tuple[ResultLine, ...] = ()
    plan: int | None = None  # TAP 1..N
    plan_stream: str = "stdout"  # the plan counts the TAP results of its own stream
    plan_skip: str | None = None  # 1..0 # SKIP reason
    summary: tuple[int, int] | None = None  # (passed, failed) from the last "N passed, M failed"
    bail: str | None = None


def _from_tap(line: Result, text: str, stream: str) -> ResultLine:
    name = line.description.strip().lstrip("-:").strip() or f"test {line.number or '?'}"
    reason = line.directive.reason or ""
    if line.skip:
        return ResultLine(name=name, outcome=Outcome.SKIP, message=f"SKIP {reason}".strip(), line=text, stream=stream)
    if line.todo:  # a known failure: not counted against the script; an unexpected pass is a pass
        outcome = Outcome.PASS if line.ok else Outcome.SKIP
        return ResultLine(name=name, outcome=outcome, message=f"TODO {reason}".strip(), line=text, stream=stream)
    outcome = Outcome.PASS if line.ok else Outcome.FAIL
    return ResultLine(name=name, outcome=outcome, message="" if line.ok else text.strip(), line=text, stream=stream)


def _from_common(match: re.Match[str], text: str, stream: str) -> ResultLine:
    word = " ".join(match["word"].lower().split())
    name = match["name"]
    if word in _PASSING:
        return ResultLine(name=name, outcome=Outcome.PASS, line=text, stream=stream, tap=False)
    name, _, why = name.partition(": ")
    return ResultLine(
        name=name.strip(),
        outcome=Outcome.FAIL,
        message=why.strip() or text.strip(),
        line=text,
        stream=stream,
        tap=False,
    )


def parse_output(stdout: str, stderr: str) -> ParsedOutput:
    results: list[ResultLine] = []
    found: dict[str, object] = {}
    parser = Parser()
    for stream, text in (("stdout", stdout), ("stderr", stderr)):
        for raw in text.splitlines():
            line = parser.parse_line(raw.rstrip("\r"))
            if isinstance(line, Result):
                results.append(_from_tap(line, raw, stream))
            elif isinstance(line, Plan):
                found["plan"], found["plan_stream"] = line.expected_tests, stream
                if line.skip:
                    found["plan_skip"] = line.directive.reason or "skipped"
            elif isinstance(line, Bail):
                found["bail"] = line.reason or "(no reason)"
            elif summary := _SUMMARY.match(raw):
                found["summary"] = (int(summary["passed"]), int(summary["failed"]))
            elif common := _COMMON.match(raw):
                results.append(_from_common(common, raw, stream))
    return ParsedOutput(results=tuple(_unique(results)), **found)  # type: ignore[arg-type]


def _unique(results: list[ResultLine]) -> list[ResultLine]:
    """Two results with the same name get ' (2)', ' (3)'... so each stays a testcase."""
    seen: dict[str, int] = {}
    unique = []
    for result in results:
        seen[result.name] = seen.get(result.name, 0) + 1
        if seen[result.name] > 1:
            result = ResultLine(**{**result.__dict__, "name": f"{result.name} ({seen[result.name]})"})
        unique.append(result)
    return unique
