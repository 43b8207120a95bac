"""The summary table every check command prints at its end: one row per
suite (name, result, seconds, log), the reason under a row that has one."""

from __future__ import annotations

from ccvm.report.results import Outcome, Suite


def table(suites: list[Suite], *, first_column: str, prefix: str = "") -> str:
    """The summary: name, result, seconds, log; reasons under the row."""
    rows = [(first_column, "result", "seconds", "log")]
    notes: dict[int, str] = {}
    for suite in suites:
        label = "flaky" if suite.flaky and suite.outcome is Outcome.PASS else str(suite.outcome)
        seconds = suite.properties.get("boot_seconds") or suite.properties.get("seconds") or ""
        rows.append((suite.name.removeprefix(prefix), label, seconds or "-", suite.log_path or "-"))
        if suite.reason:
            notes[len(rows) - 1] = suite.reason
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)).rstrip())
        if index in notes:
            lines.append(f"    {notes[index]}")
    return "\n".join(lines)
