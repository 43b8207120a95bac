"""Findings, and how a check holds them against matrix/baseline.yaml.

fmt and lint turn what each tool reports into ``Finding``s (one per
offending line: a shellcheck comment, a ruff diagnostic, a line a
formatter would change).  ``judge`` splits a file's findings into new ones
and known ones (in the baseline, counted: a fingerprint known twice covers
two findings) and says which known ones were not found any more.
``known_case`` is the case of a file whose findings are all known: skipped,
with the reason.  ``stale`` lists the baseline's findings a run no longer
sees (fixed, or their file gone), for the line that says so."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.matrix.baseline import BASELINE_FILE, Baseline
from ccvm.report.results import Case, Outcome, Suite

PRUNE_HINT = "ccvm baseline --prune"


def fingerprint(rule: str, source_line: str) -> str:
    """12 hex digits over the rule and the line's text with its whitespace collapsed."""
    normal = " ".join(source_line.split())
    return hashlib.sha256(f"{rule}\0{normal}".encode()).hexdigest()[:12]


@dataclass(frozen=True, kw_only=True)
class Finding:
    tool: str
    file: str
    rule: str
    line: int | None
    text: str  # as shown: FILE:LINE:COL: RULE message
    source_line: str = ""  # the offending line's text

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.source_line)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    new: list[Finding] = field(default_factory=list)
    known: list[Finding] = field(default_factory=list)
    gone: int = 0  # known findings of this file that were not found


@dataclass(frozen=True, kw_only=True)
class Checked:
    """One tool's run: its suite and, when the tool judged every file it was given, each file's verdict
    (None when it did not run, or broke: then nothing can be said about the baseline)."""

    tool: str  # shfmt, nixfmt, shellcheck, ruff-check, ruff-format
    suite: Suite
    verdicts: dict[str, Verdict] | None


def judge(findings: list[Finding], baseline: Baseline, tool: str, relpath: str) -> Verdict:
    expected = Counter(baseline.expected(tool, relpath))
    new, known = [], []
    for finding in findings:
        key = (finding.rule, finding.fingerprint)
        if expected[key] > 0:
            expected[key] -= 1
            known.append(finding)
        else:
            new.append(finding)
    return Verdict(new=new, known=known, gone=sum(expected.values()))


def _rules(findings: list[Finding]) -> str:
    counts = Counter(f.rule for f in findings)
    return ", ".join(f"{rule} x{n}" if n > 1 else rule for rule, n in sorted(counts.items()))


def known_note(verdict: Verdict) -> str:
    if not verdict.known:
        return ""
    return f"{len(verdict.known)} finding(s) ({_rules(verdict.known)}) in matrix/{BASELINE_FILE}"


def known_case(relpath: str, verdict: Verdict, *, line: int | None = None) -> Case:
    """A file whose every finding is in the baseline: skipped, saying so."""
    message = f"known: {known_note(verdict)}, there since the project adopted ccvm"
    if verdict.gone:
        message += f"; {verdict.gone} more no longer found ({PRUNE_HINT} drops them)"
    details = "\n".join(f.text for f in verdict.known)
    return Case(
        name=relpath, outcome=Outcome.SKIP, message=message, output=details, file=relpath, line=line, known=True
    )


def passed_case(relpath: str, verdict: Verdict, **fields: object) -> Case:
    output = f"{verdict.gone} known finding(s) no longer found; {PRUNE_HINT} drops them" if verdict.gone else ""
    return Case(name=relpath, outcome=Outcome.PASS, output=output, **fields)  # type: ignore[arg-type]


def judged_case(
    tool: str, relpath: str, findings: list[Finding], baseline: Baseline, fail: Callable[[list[Finding]], Case]
) -> tuple[Case, Verdict]:
    """The case of a file from its findings: new ones fail (``fail`` words it), known ones alone skip it."""
    verdict = judge(findings, baseline, tool, relpath)
    if verdict.new:
        case = fail(verdict.new)
        case.file, case.line = relpath, verdict.new[0].line
        if verdict.known:
            case.details = f"{case.details.rstrip()}\n(and {known_note(verdict)}, known)\n"
        return case, verdict
    if verdict.known:
        return known_case(relpath, verdict, line=verdict.known[0].line), verdict
    return passed_case(relpath, verdict, file=relpath), verdict


def _lines(root: Path, relpath: str) -> list[str]:
    try:
        return (root / relpath).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def parse_error_finding(tool: str, root: Path, relpath: str, message: str) -> Finding:
    line = line_of_message(message)
    return Finding(
        tool=tool,
        file=relpath,
        rule=PARSE_ERROR,
        line=line,
        text=f"{tool} cannot parse it: {message}",
        source_line=source_line(_lines(root, relpath), line),
    )


def unformatted_case(
    tool: str, relpath: str, diff: str, new: list[Finding], fix_command: str, *, verb: str = "ccvm fmt --fix"
) -> Case:
    """A file a formatter would change in new places: the hunks with those places, and how to fix it."""
    lines = {f.line for f in new if f.line is not None}
    how = f"{verb} (or {fix_command})" if verb else fix_command
    return Case(
        name=relpath,
        outcome=Outcome.FAIL,
        details=diff_of(diff, lines) or diff,
        message=f"{relpath}: not formatted ({len(new)} line(s)); run {how}",
    )


def stale(baseline: Baseline, tool: str, checked: dict[str, Verdict]) -> list[str]:
    """What the baseline knows for this tool that the run no longer found: per file, how many and why."""
    lines = []
    for relpath in baseline.files(tool):
        if relpath in checked:
            gone = checked[relpath].gone
            if gone:
                lines.append(f"{relpath}: {gone} fixed")
        else:
            known = sum(baseline.expected(tool, relpath).values())
            lines.append(f"{relpath}: {known} gone (the file is no longer checked: deleted, renamed or excluded)")
    return lines


def hold_up(suite: Suite, baseline: Baseline, tool: str, checked: dict[str, Verdict]) -> None:
    """Set what the suite says about the baseline: how many known findings, in how many files, and what is gone."""
    suite.known, suite.notes = note_for(suite.name, baseline, tool, checked)
    if suite.known:
        suite.properties["baseline-known"] = str(suite.known)
        suite.properties["baseline-known-files"] = str(sum(bool(v.known) for v in checked.values()))


def note_for(suite_name: str, baseline: Baseline, tool: str, checked: dict[str, Verdict]) -> tuple[int, list[str]]:
    """How many known findings the run met, and the notes a report prints about the baseline."""
    known = sum(len(v.known) for v in checked.values())
    gone = stale(baseline, tool, checked)
    notes = []
    if gone:
        notes.append(f"{suite_name}: baselined findings no longer found ({'; '.join(gone)}); `{PRUNE_HINT}` drops them")
    return known, notes


_LOCATION = re.compile(r":(\d+)(?::\d+)?:")


def line_of_message(message: str) -> int | None:
    found = _LOCATION.search(message)
    return int(found.group(1)) if found else None


def source_line(lines: list[str], number: int | None) -> str:
    if number is None or not 1 <= number <= len(lines):
        return ""
    return lines[number - 1]


# --- a formatter's diff as findings ---------------------------------------------------------------------------------

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
_HUNK_NEW = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)")
UNFORMATTED = "unformatted"
PARSE_ERROR = "parse-error"


@dataclass(kw_only=True)
class Hunk:
    lines: list[str]  # the hunk as written, header first
    removed: list[tuple[int, str]] = field(default_factory=list)  # (original line number, its text)
    added: list[str] = field(default_factory=list)
    at: int = 1  # the original line the hunk starts at

    @property
    def touches(self) -> set[int]:
        return {n for n, _ in self.removed} or {self.at}


def _hunks(diff: str) -> tuple[list[str], list[Hunk]]:
    head: list[str] = []
    hunks: list[Hunk] = []
    old = 0
    for line in diff.splitlines(keepends=True):
        found = _HUNK.match(line)
        if found:
            old = int(found.group(1))
            hunks.append(Hunk(lines=[line], at=max(old, 1)))
            continue
        if not hunks:
            head.append(line)
            continue
        hunk = hunks[-1]
        hunk.lines.append(line)
        if line.startswith("-"):
            hunk.removed.append((old, line[1:].rstrip("\n")))
            old += 1
        elif line.startswith(" "):
            old += 1
        elif line.startswith("+"):
            hunk.added.append(line[1:].rstrip("\n"))
    return head, hunks


def diff_findings(tool: str, relpath: str, diff: str) -> list[Finding]:
    """One finding per original line the formatter would change (a pure insertion: one for the hunk)."""
    findings = []
    for hunk in _hunks(diff)[1]:
        for number, text in hunk.removed:
            findings.append(
                Finding(
                    tool=tool,
                    file=relpath,
                    rule=UNFORMATTED,
                    line=number,
                    text=f"{relpath}:{number}: not formatted as {tool} formats it",
                    source_line=text,
                )
            )
        if not hunk.removed and hunk.added:
            findings.append(
                Finding(
                    tool=tool,
                    file=relpath,
                    rule=UNFORMATTED,
                    line=hunk.at,
                    text=f"{relpath}:{hunk.at}: {tool} would insert lines here",
                    source_line="+" + "\n".join(hunk.added),
                )
            )
    return findings


def diff_of(diff: str, lines: set[int], context: int = 2) -> str:
    """The diff cut down to the changes at the given original lines (the new findings), each with a little
    context and its own @@ header, under the diff's file header."""
    head, hunks = _hunks(diff)
    out = list(head)
    for hunk in hunks:
        found = _HUNK_NEW.match(hunk.lines[0])
        old, new = hunk.at, int(found.group(1)) if found else hunk.at
        rows = []  # (kind, text, old line, new line)
        for line in hunk.lines[1:]:
            kind = line[:1]
            rows.append((kind, line, old, new))
            old += kind in (" ", "-")
            new += kind in (" ", "+")
        index = 0
        while index < len(rows):
            if rows[index][0] not in "-+":
                index += 1
                continue
            end = index
            while end < len(rows) and rows[end][0] in "-+\\":
                end += 1
            touched = {r[2] for r in rows[index:end] if r[0] == "-"} or {rows[index][2]}
            if touched & lines:
                start, stop = max(0, index - context), min(len(rows), end + context)
                part = rows[start:stop]
                old_len = sum(r[0] in " -" for r in part)
                new_len = sum(r[0] in " +" for r in part)
                out.append(f"@@ -{part[0][2]},{old_len} +{part[0][3]},{new_len} @@\n")
                out += [r[1] for r in part]
            index = end
    return "".join(out) if len(out) > len(head) else ""
