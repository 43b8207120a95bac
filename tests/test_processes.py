"""Children die with their run: the whole process group, grandchildren included."""

from __future__ import annotations

import os
import time
import uuid

from ccvm.processes import run


def alive_with(marker: str) -> list[int]:
    found = []
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                with open(f"/proc/{proc}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(proc))
            except OSError:
                continue
    return found


GONE_WITHIN_S = 10.0  # SIGKILL'ed processes vanish in milliseconds; this only bounds a wait for one that does not


def gone(marker: str) -> list[int]:
    """The processes still alive with ``marker`` once they had GONE_WITHIN_S to vanish (killed processes
    vanish when the kernel has torn them down, a moment after the signal: waited for, not slept past)."""
    deadline = time.monotonic() + GONE_WITHIN_S
    while alive_with(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive_with(marker)


def test_a_timeout_kills_grandchildren_that_ignore_sigterm():
    marker = f"ccvm-test-{uuid.uuid4().hex[:8]}"
    script = f"(trap '' TERM; exec -a {marker} sleep 300) & trap 'exit 0' TERM; sleep 300 & wait"
    result = run(["bash", "-c", script], timeout_s=1)
    assert result.returncode is None and "timed out" in result.stderr
    assert gone(marker) == []


def test_a_background_grandchild_of_a_finished_command_is_killed():
    marker = f"ccvm-test-{uuid.uuid4().hex[:8]}"
    result = run(
        ["bash", "-c", f"(exec -a {marker} sleep 300) >/dev/null 2>&1 </dev/null & echo started"], timeout_s=10
    )
    assert result.ok and result.stdout.strip() == "started"
    assert gone(marker) == []


def test_a_spawn_after_shutdown_began_is_killed_at_once(monkeypatch):
    import pytest

    from ccvm import processes
    from ccvm.errors import ShuttingDown

    marker = f"ccvm-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(processes, "_shutting_down", processes.threading.Event())
    processes._shutting_down.set()  # as begin_shutdown leaves it, without killing this test's other children
    with pytest.raises(ShuttingDown):
        processes.spawn(["bash", "-c", f"exec -a {marker} sleep 300"])
    assert gone(marker) == []
