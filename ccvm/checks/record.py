"""Writing the baseline: what fmt and lint find now, as matrix/baseline.yaml entries.

``recorded`` is what ``ccvm init`` and ``ccvm baseline --record`` write:
for every tool that judged all its files, exactly the findings present
now (a tool that did not run keeps its entries).  ``pruned`` is ``ccvm
baseline --prune``: the entries still found, never one more; a file that
is no longer checked (deleted, renamed, excluded) leaves with all of its
findings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ccvm.checks.baseline import Checked, Finding
from ccvm.checks.fmt import FORMATTERS, check_fmt
from ccvm.checks.lint import LINTERS, check_lint
from ccvm.checks.sourcefiles import discover
from ccvm.matrix.baseline import Baseline, Entry
from ccvm.matrix.style import TOOLS, Style
from ccvm.report.progress import Progress
from ccvm.require import Requirements

# Recording notes a tool this host lacks as not run; it never fails for it.
NEVER_REQUIRED = Requirements()


def _judged(checked: list[Checked]) -> dict[str, Checked]:
    return {c.tool: c for c in checked if c.verdicts is not None}


def findings_now(checked: list[Checked]) -> dict[str, list[Finding]]:
    """Per tool that judged all its files, every finding it reported (known or new)."""
    return {
        tool: [f for verdict in c.verdicts.values() for f in (*verdict.known, *verdict.new)]
        for tool, c in _judged(checked).items()
        if c.verdicts is not None
    }


def entries_of(findings: list[Finding], setting_of: Callable[[str, str], str]) -> list[Entry]:
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for f in findings:
        key = (f.tool, f.file, f.rule, setting_of(f.tool, f.file))
        groups.setdefault(key, []).append(f.fingerprint)
    return [
        Entry(tool=tool, file=file, rule=rule, setting=setting, fingerprints=tuple(sorted(prints)))
        for (tool, file, rule, setting), prints in groups.items()
    ]


@dataclass(frozen=True, kw_only=True)
class Change:
    entries: list[Entry]
    added: int
    dropped: int


def recorded(baseline: Baseline, checked: list[Checked], setting_of: Callable[[str, str], str]) -> Change:
    now = findings_now(checked)
    kept = [e for e in baseline.entries if e.tool not in now]
    fresh = entries_of([f for findings in now.values() for f in findings], setting_of)
    before = Counter((e.tool, e.file, e.rule, p) for e in baseline.entries if e.tool in now for p in e.fingerprints)
    after = Counter((e.tool, e.file, e.rule, p) for e in fresh for p in e.fingerprints)
    return Change(entries=kept + fresh, added=sum((after - before).values()), dropped=sum((before - after).values()))


def pruned(baseline: Baseline, checked: list[Checked]) -> Change:
    judged = _judged(checked)
    present: dict[tuple[str, str], Counter] = {}
    for tool, c in judged.items():
        for relpath, verdict in (c.verdicts or {}).items():
            present[(tool, relpath)] = Counter((f.rule, f.fingerprint) for f in (*verdict.known, *verdict.new))
    entries, dropped = [], 0
    for entry in baseline.entries:
        if entry.tool not in judged:
            entries.append(entry)
            continue
        found = present.get((entry.tool, entry.file), Counter())
        kept = []
        for fingerprint in entry.fingerprints:
            if found[(entry.rule, fingerprint)] > 0:
                found[(entry.rule, fingerprint)] -= 1
                kept.append(fingerprint)
        dropped += len(entry.fingerprints) - len(kept)
        if kept:
            entries.append(
                Entry(
                    tool=entry.tool, file=entry.file, rule=entry.rule, setting=entry.setting, fingerprints=tuple(kept)
                )
            )
    return Change(entries=entries, added=0, dropped=dropped)


def run_all(
    root: Path,
    *,
    style: Style,
    baseline: Baseline,
    tools: tuple[str, ...] = TOOLS,
    progress: Progress | None = None,
) -> list[Checked]:
    """fmt's and lint's tools over the project (a missing tool: a skipped suite, not an error), with verdicts."""
    files = discover(root)
    formatters = tuple(t for t in tools if t in FORMATTERS)
    linters = tuple(t for t in tools if t in LINTERS)
    checked = []
    if formatters:
        checked += check_fmt(
            root,
            files=files,
            style=style,
            baseline=baseline,
            tools=formatters,
            requirements=NEVER_REQUIRED,
            progress=progress,
        )
    if linters:
        checked += check_lint(
            root,
            files=files,
            style=style,
            baseline=baseline,
            tools=linters,
            requirements=NEVER_REQUIRED,
            progress=progress,
        )
    return checked


def not_run(checked: list[Checked], tools: tuple[str, ...]) -> dict[str, str]:
    """The tools that could not judge the project, with why (a tool with no files to look at is not listed)."""
    out = {c.tool: c.suite.reason or "it did not judge every file" for c in checked if c.verdicts is None}
    return {tool: out[tool] for tool in tools if tool in out}
