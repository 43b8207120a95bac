"""The baseline ``ccvm init`` records: every finding fmt and lint report when
the project adopts ccvm, so the first gate is green and only new findings
fail (matrix/baseline.yaml, see ccvm.matrix.baseline).

Each finding is attributed: under the project's own setting for that tool
and file (its .editorconfig, treefmt, CI line, .shellcheckrc, ruff config:
``ProjectStyle.own_setting``), or under the tool's defaults, which the
project never chose.  Both are recorded; init lists the first apart ("violates
its own .editorconfig"), since those are the project's own rule broken."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ccvm.adopt.formatters import ProjectStyle
from ccvm.checks.baseline import PARSE_ERROR
from ccvm.checks.record import findings_now, not_run, recorded, run_all
from ccvm.errors import ConfigError
from ccvm.files import write_atomic
from ccvm.matrix.baseline import BASELINE_FILE, Baseline, dump_baseline
from ccvm.matrix.style import TOOLS, load_style

_WHERE = re.compile(r"([\w./@+-]+):\d+")


@dataclass(frozen=True, kw_only=True)
class Recorded:
    lines: tuple[str, ...]  # what init prints
    wrote: bool


def _own_file(setting: str) -> str:
    found = _WHERE.search(setting)
    return found.group(1) if found else setting.split()[0]


def record_at_adoption(root: Path, style: ProjectStyle) -> Recorded:
    """Run fmt's and lint's tools once; write matrix/baseline.yaml with what they find (nothing when clean)."""
    path = root / "matrix" / BASELINE_FILE
    if path.exists():
        return Recorded(
            lines=(f"left alone: matrix/{BASELINE_FILE} (the project's own; `ccvm baseline --record` records again)",),
            wrote=False,
        )
    checked = run_all(root, style=load_style(root / "matrix"), baseline=Baseline())
    lines = [
        f"not recorded: {tool} ({why}); `ccvm baseline --record --tool {tool}` where it runs"
        for tool, why in not_run(checked, TOOLS).items()
    ]
    now = findings_now(checked)
    total = sum(len(found) for found in now.values())
    if not total:
        return Recorded(lines=("baseline: no findings at adoption: fmt and lint pass as they are", *lines), wrote=False)
    change = recorded(Baseline(), checked, style.own_setting)
    try:
        write_atomic(path, dump_baseline(change.entries).encode("utf-8"))
    except OSError as exc:
        raise ConfigError(path, None, f"cannot write: {exc.strerror or exc}") from None
    head = (
        f"baseline: {total} finding(s) present at adoption recorded in matrix/{BASELINE_FILE}: fmt and lint "
        "report them as known (skipped), and fail on any new one"
    )
    return Recorded(lines=(head, *_summary(change.entries), *lines), wrote=True)


def _summary(entries: list) -> list[str]:
    defaults: Counter = Counter()
    own: dict[tuple[str, str], Counter] = {}
    parse: list[str] = []
    for entry in entries:
        count = len(entry.fingerprints)
        if entry.rule == PARSE_ERROR:
            parse.append(f"  {entry.tool} cannot parse {entry.file}: known, so {entry.tool} checks nothing else in it")
        elif entry.setting:
            own.setdefault((_own_file(entry.setting), entry.setting), Counter())[(entry.tool, entry.file)] += count
        else:
            defaults[(entry.tool, entry.file)] += count
    out = []
    for (file, setting), counts in sorted(own.items()):
        listed = ", ".join(f"{tool} {path} ({n})" for (tool, path), n in sorted(counts.items()))
        out.append(f"  violates its own {file} ({setting}): {listed}")
    if defaults:
        listed = ", ".join(f"{tool} {path} ({n})" for (tool, path), n in sorted(defaults.items()))
        out.append(f"  under the tools' defaults (the project sets nothing for them): {listed}")
    return out + parse
