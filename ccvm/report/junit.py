"""JUnit XML for every check, valid against the Jenkins xUnit plugin's
junit-10.xsd (the strictest common reader; tests/fixtures/junit/ holds it).

What that schema asks, and so what is written here:

- ``testsuite`` carries name, tests, failures, errors, skipped and time (a
  plain decimal: times are rounded to milliseconds); ``testsuites`` carries
  no ``skipped``; there is no ``disabled`` anywhere.
- a ``testcase`` has no properties of its own: the path of a case's full
  log is a line in its system-out (also as Jenkins' ``[[ATTACHMENT|path]]``).
- one addition to that schema: a case about a file (a lint or fmt finding,
  a dead link) carries ``file`` and, where known, ``line``, as pytest's
  xunit1 family writes them, because GitHub's JUnit reporters annotate
  exactly that place (without it they take the last dotted part of the
  classname for a file name).  Classnames stay stable ids.
- retries are written as Maven Surefire writes them: a case that passed
  after failing holds one ``flakyFailure`` per earlier attempt in which
  that case failed (a case that never failed holds none); a case that still
  fails holds a ``rerunFailure`` per earlier attempt in which it failed.
- a suite's time is its wall time where the check knows it (a boot cell's
  boots share cores and overlap), else the sum of its cases; the root's is
  the sum of its suites.
- a skip's reason is both the ``message`` attribute and the element's text;
  a file skipped because its findings are all in the adoption baseline has
  ``type="baseline"`` (the gate counts it as run).

Console text holds escape and control characters: ANSI sequences are
removed and characters XML 1.0 cannot carry are replaced, so the file
always parses.  system-out and failure text are bounded per case
(``MAX_CASE_TEXT``): the tail is kept, with a line saying what was cut and
where the whole text is.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ccvm.errors import UsageError
from ccvm.files import write_atomic
from ccvm.report.results import Case, Outcome, Suite
from ccvm.text import clean_text

BASELINE_SKIP = "baseline"  # <skipped type=...> of a case whose findings are all known (ccvm.checks.baseline)

MAX_CASE_TEXT = 64 * 1024  # bytes of system-out (and of failure text) kept per case
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def seconds(value: float) -> str:
    """A time as junit-10.xsd's SUREFIRE_TIME wants it: milliseconds, no exponent."""
    return f"{max(0.0, value):.3f}"


class _Spill:
    """Where the whole text of a case goes when its XML copy is cut."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def bounded(self, text: str, suite: Suite, case: Case, kind: str) -> str:
        data = text.encode("utf-8")
        if len(data) <= MAX_CASE_TEXT:
            return text
        full = self._save(text, suite, case, kind)
        tail = data[-MAX_CASE_TEXT:].decode("utf-8", errors="ignore")
        where = f"full text: {full}" if full else "the full text was not kept"
        return f"[cut: the first {len(data) - len(tail.encode())} of {len(data)} bytes are not shown; {where}]\n{tail}"

    def _save(self, text: str, suite: Suite, case: Case, kind: str) -> str:
        if self.directory is None:
            return suite.log_path
        name = _UNSAFE_NAME.sub("_", f"{suite.name}.{case.name}.{kind}.log")
        path = self.directory / name
        try:
            write_atomic(path, text.encode("utf-8"))
        except OSError:
            return suite.log_path
        return str(path)


def _system_out(suite: Suite, case: Case, spill: _Spill) -> str:
    text = spill.bounded(clean_text(case.output), suite, case, "out")
    if suite.log_path:
        log = clean_text(suite.log_path)
        text = f"{text}\nfull log: {log}\n[[ATTACHMENT|{log}]]".lstrip("\n")
    return text


def _reruns(parent: ET.Element, case: Case) -> None:
    passed = case.outcome is Outcome.PASS
    tag = "flakyFailure" if passed else "rerunFailure"
    later = "a later attempt passed" if passed else "so did every later attempt"
    for earlier in case.earlier_failures:
        rerun = ET.SubElement(parent, tag, message=clean_text(earlier.message), type="failure")
        rerun.text = f"attempt {earlier.attempt} of this case failed; {later}"
        if earlier.logs:
            ET.SubElement(rerun, "system-out").text = f"logs: {clean_text(earlier.logs)}"


def _case(suite: Suite, case: Case, spill: _Spill) -> ET.Element:
    element = ET.Element("testcase", name=case.name, classname=suite.name, time=seconds(case.seconds))
    if case.file:
        element.set("file", case.file)
        if case.line is not None:
            element.set("line", str(case.line))
    if case.outcome is Outcome.FAIL:
        failure = ET.SubElement(element, "failure", message=clean_text(case.message), type="failure")
        failure.text = spill.bounded(clean_text(case.details), suite, case, "failure") or None
    elif case.outcome is Outcome.SKIP:
        skipped = ET.SubElement(element, "skipped", message=clean_text(case.message))
        if case.known:
            skipped.set("type", BASELINE_SKIP)
        skipped.text = clean_text(case.message) or None
    if case.outcome is not Outcome.SKIP:
        _reruns(element, case)
    out = _system_out(suite, case, spill)
    if out:
        ET.SubElement(element, "system-out").text = out
    return element


def _counts(cases: list[Case], time_s: float) -> dict[str, str]:
    return {
        "tests": str(len(cases)),
        "failures": str(sum(case.outcome is Outcome.FAIL for case in cases)),
        "errors": "0",
        "skipped": str(sum(case.outcome is Outcome.SKIP for case in cases)),
        "time": seconds(time_s),
    }


def _suite(suite: Suite, spill: _Spill) -> ET.Element:
    element = ET.Element("testsuite", name=suite.name, **_counts(suite.cases, suite.wall_seconds))
    if suite.properties:
        properties = ET.SubElement(element, "properties")
        for key, value in sorted(suite.properties.items()):
            ET.SubElement(properties, "property", name=key, value=clean_text(value))
    element.extend(_case(suite, case, spill) for case in suite.cases)
    return element


def to_xml(suites: list[Suite], *, spill_dir: Path | None = None) -> str:
    """The JUnit document; a case text too long to keep whole is saved under spill_dir."""
    spill = _Spill(spill_dir)
    cases = [case for suite in suites for case in suite.cases]
    time_s = sum(suite.wall_seconds for suite in suites)
    totals = {key: value for key, value in _counts(cases, time_s).items() if key != "skipped"}
    root = ET.Element("testsuites", **totals)
    root.extend(_suite(suite, spill) for suite in suites)
    ET.indent(root, space="\t")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def spill_dir_for(path: Path) -> Path:
    """Beside the JUnit file: reports/junit/boot.xml -> reports/junit/boot.logs/."""
    return path.with_name(f"{path.stem}.logs")


def write_junit(path: Path, suites: list[Suite], *, option: str = "--junit") -> None:
    """Write the file; a path that cannot be written is a UsageError naming the option that gave it."""
    try:
        write_atomic(path, to_xml(suites, spill_dir=spill_dir_for(path)).encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write the JUnit file: {exc.strerror or exc}") from None
