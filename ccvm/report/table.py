"""The summary table every check command prints at its end: one row per
suite (name, result, seconds, log), the reason under a row that has one; a
flaky suite names each case that passed only on a retry, and why it failed before; a suite that met
findings the project's baseline knows says how many."""

from __future__ import annotations

from ccvm.report.results import Case, Outcome, Suite


def _flaky_note(case: Case) -> str:
    earlier = ", ".join(f"attempt {f.attempt}: {f.message}" for f in case.earlier_failures)
    return f"{case.name} passed on a retry ({earlier})"


def table(suites: list[Suite], *, first_column: str, prefix: str = "") -> str:
    """The summary: name, result, seconds, log; reasons under the row."""
    rows = [(first_column, "result", "seconds", "log")]
    notes: dict[int, str] = {}
    for suite in suites:
        label = "flaky" if suite.flaky else str(suite.outcome)
        seconds = f"{suite.wall_seconds:.1f}" if suite.cases else "-"
        rows.append((suite.name.removeprefix(prefix), label, seconds, suite.log_path or "-"))
        if suite.known and suite.outcome is not Outcome.FAIL:
            files = suite.properties.get("baseline-known-files", "?")
            notes[len(rows) - 1] = f"{suite.known} known finding(s) in {files} file(s) (matrix/baseline.yaml)"
        elif suite.reason:
            notes[len(rows) - 1] = suite.reason
        elif suite.flaky:
            notes[len(rows) - 1] = "; ".join(_flaky_note(case) for case in suite.flaky_cases)
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)).rstrip())
        if index in notes:
            lines.append(f"    {notes[index]}")
    return "\n".join(lines)
