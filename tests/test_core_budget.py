"""The core budget the boot runner schedules boots with: threads stand in
for boots (no QEMU needed to test who may run when)."""

from __future__ import annotations

import threading
import time

import pytest

from ccvm.checks.boot.cores import Cancelled, CoreBudget


def waiting(budget: CoreBudget, count: int, timeout_s: float = 30.0) -> bool:
    """Whether ``count`` boots are queued for cores, waited for (threads start late on a busy host)."""
    deadline = time.monotonic() + timeout_s
    while len(budget._waiting) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(budget._waiting) >= count


def test_boots_never_hold_more_cores_than_the_budget():
    budget = CoreBudget(2)
    running, peak, lock = [0], [0], threading.Lock()

    def boot(vcpus: int) -> None:
        with budget.held(vcpus, estimate_s=1.0) as cores:
            with lock:
                running[0] += cores
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= cores

    threads = [threading.Thread(target=boot, args=(v,)) for v in (1, 1, 2, 1, 1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert peak[0] == 2 and running[0] == 0


def test_two_one_vcpu_boots_run_side_by_side_on_two_cores():
    budget = CoreBudget(2)
    inside = threading.Barrier(2, timeout=60)  # breaks (and fails the test) unless both are inside at once

    def boot() -> None:
        with budget.held(1, estimate_s=1.0):
            inside.wait()

    threads = [threading.Thread(target=boot) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not inside.broken


def test_a_guest_wider_than_the_host_runs_alone():
    budget = CoreBudget(2)
    with budget.held(8, estimate_s=1.0) as cores:
        assert cores == 2


def test_the_longest_waiting_boot_goes_first():
    budget = CoreBudget(1)
    order: list[str] = []

    def boot(name: str, estimate: float) -> None:
        with budget.held(1, estimate_s=estimate):
            order.append(name)

    with budget.held(1, estimate_s=0.0):  # the budget is spent while the others queue up
        threads = [
            threading.Thread(target=boot, args=(n, e)) for n, e in (("short", 2.0), ("long", 30.0), ("mid", 9.0))
        ]
        for thread in threads:
            thread.start()
        assert waiting(budget, 3), "the three boots never queued up"
    for thread in threads:
        thread.join(timeout=60)
    assert order == ["long", "mid", "short"]


def test_cancel_stops_the_waiting_boots():
    budget = CoreBudget(1)
    outcome: list[str] = []

    def boot() -> None:
        try:
            with budget.held(1, estimate_s=1.0):
                outcome.append("ran")
        except Cancelled:
            outcome.append("cancelled")

    with budget.held(1, estimate_s=1.0):
        waiter = threading.Thread(target=boot)
        waiter.start()
        assert waiting(budget, 1), "the boot never queued up"  # cancelled while waiting, not before it asked
        budget.cancel()
        waiter.join(timeout=60)
    assert outcome == ["cancelled"]
    with pytest.raises(Cancelled), budget.held(1, estimate_s=1.0):
        pass
