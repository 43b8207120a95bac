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


GONE_WITHIN_S = 60.0  # SIGKILL'ed processes vanish in milliseconds; this only bounds a wait for one that does not


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


def test_a_leftover_holding_the_output_open_does_not_hold_the_run_to_its_timeout():
    marker = f"ccvm-test-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    result = run(["bash", "-c", f"(trap '' TERM; exec -a {marker} sleep 300) & echo started"], timeout_s=60)
    assert time.monotonic() - started < 30  # held to the timeout, it would take 60 s: halfway to that
    assert result.ok and result.stdout.strip() == "started"
    assert gone(marker) == []


def test_a_sessions_processes_are_read_and_stopped_with_what_they_started():
    from ccvm.processes import descendants, session_processes, spawn, stop, stop_processes

    marker = f"ccvm-test-{uuid.uuid4().hex[:8]}"
    proc = spawn(["bash", "-c", f"bash -c 'exec -a {marker}-child sleep 300; :' & exec -a {marker} sleep 300"])
    try:
        # Until both have exec'd: before, each is a bash whose command line holds the marker too.
        deadline = time.monotonic() + 60
        while True:
            table = session_processes(proc.pid)
            named = {info.argv[0] for info in table}
            if {marker, f"{marker}-child"} <= named or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        assert {marker, f"{marker}-child"} <= named
        child = next(info for info in table if info.argv[0] == f"{marker}-child")
        assert [info.pid for info in descendants(child.pid, table)] == [child.pid]
        stop_processes(descendants(child.pid, table))
        assert gone(f"{marker}-child") == [] and alive_with(marker) != []
    finally:
        stop(proc)
