"""What a person sees while checks run: a live line per item, then a table."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from ccvm.report.results import Outcome, Suite


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._done = 0

    def _line(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        self._line(text)

    def started(self, name: str, what: str) -> None:
        self._line(f"[{self._done}/{self.total}] {name}: {what}")

    def finished(self, suite: Suite, seconds: float) -> None:
        with self._lock:
            self._done += 1
            done = self._done
        label = "flaky pass" if suite.flaky and suite.outcome is Outcome.PASS else str(suite.outcome)
        reason = f" ({suite.reason})" if suite.reason else ""
        self._line(f"[{done}/{self.total}] {suite.name}: {label} in {seconds:.1f}s{reason}")


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
