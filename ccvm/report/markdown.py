"""Merge JUnit files from every job into one, and write a Markdown summary
with the command that reproduces each failure."""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.errors import UsageError
from ccvm.files import write_atomic
from ccvm.report.junit import seconds


class Reproduce(enum.StrEnum):
    """How the reproduce lines are written: for the repository at hand, the commands that exist there."""

    CCVM = "ccvm"  # a project that adopted ccvm: ccvm's own commands (ccvm boot --cell CELL)
    NOX = "nox"  # ccvm's own repository: its nox sessions, after .ci/setup (bash .ci/setup && .venv/bin/nox -s ...)


NOX = "bash .ci/setup && .venv/bin/nox -s "
# Suite name prefix -> (the ccvm command, ccvm's own nox session) that reproduce it; {rest} is the rest of the
# suite's name (the cell of boot.CELL, the formatter of fmt.TOOL).  Another prefix gets no reproduce line.
REPRODUCE = {
    "boot": ("ccvm boot --cell {rest}", "boot -- --cell {rest}"),
    "host": ("ccvm host", "host"),
    "fmt": ("ccvm fmt --tool {rest}", "fmt -- --tool {rest}"),
    "lint": ("ccvm lint", "lint"),
    "docs": ("ccvm docs", "docs"),
    "build": ("ccvm build", "build"),
    "flake-check": ("ccvm flake-check", "flake_check"),
    "gate": ("ccvm gate", "gate"),
}


@dataclass(kw_only=True)
class SuiteSummary:
    name: str
    tests: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (case, message)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    flaky: list[tuple[str, str]] = field(default_factory=list)  # (case, why it failed before it passed)

    @property
    def status(self) -> str:
        if self.failures:
            return "fail"
        if self.skipped and len(self.skipped) == self.tests:
            return "skipped"
        return "flaky" if self.flaky else "pass"


def reproduce_command(suite_name: str, style: Reproduce = Reproduce.CCVM) -> str | None:
    """The command that reproduces a suite, in the style of the repository at hand; None if ccvm cannot say."""
    prefix, _, rest = suite_name.partition(".")
    if prefix not in REPRODUCE:
        return None
    command, session = REPRODUCE[prefix]
    template = NOX + session if style is Reproduce.NOX else command
    if "{rest}" in template and not rest:
        template = template.partition(" --")[0]  # boot alone: every cell
    return template.format(rest=rest)


def _read(path: Path) -> list[ET.Element]:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise UsageError(f"{path}: not a JUnit XML file ({exc})") from None
    return [root] if root.tag == "testsuite" else list(root.iter("testsuite"))


def merge(files: list[Path]) -> tuple[ET.Element, list[SuiteSummary]]:
    merged = ET.Element("testsuites")
    summaries = []
    for path in files:
        for suite in _read(path):
            suite.attrib.pop("disabled", None)  # written by older ccvm (junit-xml); junit-10.xsd has no such attribute
            merged.append(suite)
            summary = SuiteSummary(name=suite.get("name", path.stem))
            for case in suite.iter("testcase"):
                summary.tests += 1
                failure = case.find("failure")
                if failure is None:
                    failure = case.find("error")
                skipped = case.find("skipped")
                if failure is not None:
                    summary.failures.append((case.get("name", "?"), failure.get("message", "")))
                elif skipped is not None:
                    summary.skipped.append((case.get("name", "?"), skipped.get("message", "")))
                elif (earlier := case.find("flakyFailure")) is not None:
                    summary.flaky.append((case.get("name", "?"), earlier.get("message", "")))
            summaries.append(summary)
    # junit-10.xsd allows name, time, tests, failures and errors on <testsuites>: no skipped
    # (each <testsuite> keeps its own skipped count).
    merged.set("tests", str(sum(s.tests for s in summaries)))
    merged.set("failures", str(sum(len(s.failures) for s in summaries)))
    merged.set("errors", str(sum(_int(suite.get("errors")) for suite in merged)))
    merged.set("time", seconds(sum(_float(suite.get("time")) for suite in merged)))
    return merged, summaries


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _float(text: str | None) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]


def _headline(summaries: list[SuiteSummary], failed: list[SuiteSummary]) -> str:
    if failed:
        return f"{len(failed)} suite(s) failed"
    skipped = sum(len(s.skipped) for s in summaries)
    flaky = sum(len(s.flaky) for s in summaries)
    also = f", {flaky} flaky" if flaky else ""
    if skipped:
        return f"no failures, {skipped} skipped (skipped is not passed){also}"
    return f"no failures, {flaky} flaky (passed only on a retry)" if flaky else "all green"


def markdown(summaries: list[SuiteSummary], reproduce: Reproduce = Reproduce.CCVM) -> str:
    failed = [s for s in summaries if s.failures]
    lines = [
        f"## ccvm: {_headline(summaries, failed)}",
        "",
        "| suite | result | tests | failed | skipped |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        lines.append(f"| {s.name} | {s.status} | {s.tests} | {len(s.failures)} | {len(s.skipped)} |")
    for s in failed:
        command = reproduce_command(s.name, reproduce)
        lines += ["", f"### {s.name}", "", *([f"Reproduce: `{command}`", ""] if command else [])]
        lines += [f"- **{_cell(case)}**: {_cell(message)}" for case, message in s.failures]
    flaky = [(s.name, case, message) for s in summaries for case, message in s.flaky]
    if flaky:
        lines += ["", "### Flaky (passed only on a retry)", ""]
        lines += [f"- {name} / {case}: failed first with {_cell(message)}" for name, case, message in flaky]
    skipped = [(s.name, case, message) for s in summaries for case, message in s.skipped]
    if skipped:
        lines += ["", "### Skipped (never counted as passed)", ""]
        lines += [f"- {name} / {case}: {_cell(message)}" for name, case, message in skipped]
    return "\n".join(lines) + "\n"


def junit_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise UsageError(f"--junit-dir {directory}: no such directory")
    return sorted(p for p in directory.rglob("*.xml") if p.is_file())


def write_report(
    files: list[Path], junit: Path, summary: Path | None, reproduce: Reproduce = Reproduce.CCVM
) -> list[SuiteSummary]:
    merged, summaries = merge(files)
    ET.indent(merged)
    try:
        write_atomic(junit, ET.tostring(merged, encoding="utf-8", xml_declaration=True))
    except OSError as exc:
        raise UsageError(f"--junit {junit}: cannot write the merged JUnit file: {exc.strerror or exc}") from None
    if summary is not None:
        try:
            with summary.open("a", encoding="utf-8") as handle:
                handle.write(markdown(summaries, reproduce))
        except OSError as exc:
            raise UsageError(f"--summary {summary}: cannot append the summary: {exc.strerror or exc}") from None
    return summaries
