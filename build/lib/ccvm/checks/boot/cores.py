"""The host's cores as a budget for guests: each boot takes as many cores
as its guest has vCPUs, and waits while the budget is spent.

Boots, not cells, are scheduled: every boot of every cell asks the one
budget, and when cores free up the longest waiting boot (by its estimate)
goes first.  A guest with more vCPUs than the host has cores takes the
whole budget and runs alone.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Cancelled(Exception):
    """The run was stopped while this boot waited for cores."""


class CoreBudget:
    def __init__(self, cores: int) -> None:
        self.cores = max(1, cores)
        self._free = self.cores
        self._waiting: list[tuple[float, int]] = []  # (-estimate, arrival): the heap's top goes next
        self._arrivals = itertools.count()
        self._cancelled = False
        self._changed = threading.Condition()

    def _turn_of(self, ticket: tuple[float, int], cores: int) -> bool:
        return self._waiting[0] == ticket and self._free >= cores

    @contextmanager
    def held(self, vcpus: int, *, estimate_s: float, poll_s: float = 0.5) -> Iterator[int]:
        """Hold ``vcpus`` cores (at most the whole budget) for the block; boots
        estimated longest go first.  Raises Cancelled once ``cancel`` is called."""
        cores = min(max(1, vcpus), self.cores)
        ticket = (-estimate_s, next(self._arrivals))
        with self._changed:
            heapq.heappush(self._waiting, ticket)
            try:
                while not self._cancelled and not self._turn_of(ticket, cores):
                    self._changed.wait(poll_s)  # woken on every release; the poll only bounds a missed wake-up
            finally:
                self._waiting.remove(ticket)
                heapq.heapify(self._waiting)
                self._changed.notify_all()
            if self._cancelled:
                raise Cancelled
            self._free -= cores
        try:
            yield cores
        finally:
            with self._changed:
                self._free += cores
                self._changed.notify_all()

    def cancel(self) -> None:
        """Every waiting boot stops waiting (Cancelled); running ones are not touched."""
        with self._changed:
            self._cancelled = True
            self._changed.notify_all()
