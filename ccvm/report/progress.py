"""What a person sees while checks run: a live line per item (the table at the end is report/table.py)."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from ccvm.report.results import Suite


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
        label = "flaky pass" if suite.flaky else str(suite.outcome)
        reason = f" ({suite.reason})" if suite.reason else ""
        if suite.flaky:
            reason = f" (passed on a retry: {', '.join(case.name for case in suite.flaky_cases)})"
        self._line(f"[{done}/{self.total}] {suite.name}: {label} in {seconds:.1f}s{reason}")
