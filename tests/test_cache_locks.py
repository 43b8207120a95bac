"""The cache lock (ccvm.files.locked) across real processes: it excludes,
it times out naming the holder, it dies with its holder (SIGKILL too), and
double-checked work under it is done once however many processes race."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ccvm.errors import AssetError
from ccvm.files import lock_holder, locked
from ccvm.guest.assets import remove_abandoned_downloads

ROOT = Path(__file__).resolve().parent.parent
HOLD = """
import select, sys
from pathlib import Path
from ccvm.files import locked
with locked(Path(sys.argv[1]), timeout_s=30, what="test", shared=sys.argv[2] == "shared"):
    print("held", flush=True)
    select.select([sys.stdin], [], [], float(sys.argv[3]))  # until its stdin closes (release) or the time is up
"""


def holder(lock: Path, *, shared: bool = False, seconds: float = 120) -> subprocess.Popen:
    """A separate process that holds the lock until it is killed, its stdin is closed, or ``seconds`` pass."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock), "shared" if shared else "exclusive", str(seconds)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    return tmp_path / "locks" / "thing.lock"


def test_a_held_lock_times_out_naming_the_holder_pid(lock):
    proc = holder(lock)
    waited: list[int | None] = []
    try:
        started = time.monotonic()
        with pytest.raises(AssetError) as caught, locked(lock, timeout_s=0.5, what="fetching x", on_wait=waited.append):
            pass
        # A wait that ignored its timeout would end only with the holder, after 120 s: halfway to that.
        assert 0.5 <= time.monotonic() - started < 60
    finally:
        proc.kill()
        proc.wait()
    assert waited == [proc.pid]  # told once, with the holder
    message = str(caught.value)
    assert message.startswith(f"fetching x: gave up after waiting 0.5s for {lock}, held by pid {proc.pid}")
    assert f"kill {proc.pid}" in message


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(lock):
    proc = holder(lock)
    assert lock_holder(lock) == proc.pid
    waited: list[int | None] = []
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    started = time.monotonic()
    with locked(lock, timeout_s=120, what="after the kill", on_wait=waited.append):
        assert time.monotonic() - started < 60, "a stale lock would hold out for the whole 120 s timeout"
        assert lock_holder(lock) == os.getpid()
    assert lock_holder(lock) is None  # released: names no holder
    assert len(waited) <= 1  # at most the moment before the kernel released it


def test_waiting_ends_when_the_holder_finishes(lock):
    proc = holder(lock)
    waited: list[int | None] = []

    def release_once_waiting(pid: int | None) -> None:  # told it waits: only now the holder lets go
        waited.append(pid)
        proc.stdin.close()

    with locked(lock, timeout_s=30, what="waits", on_wait=release_once_waiting):
        assert lock_holder(lock) == os.getpid()
    assert proc.wait(timeout=10) == 0
    assert waited == [proc.pid]  # it did wait, for that holder, and got the lock when the holder finished


def test_shared_holders_coexist_and_exclude_an_exclusive_one(lock):
    first = holder(lock, shared=True)
    try:
        with locked(lock, timeout_s=60, what="second reader", shared=True):
            pass  # no wait: readers share
        with pytest.raises(AssetError, match="held by another process"), locked(lock, timeout_s=0.3, what="writer"):
            pass
    finally:
        first.kill()
        first.wait()
    with locked(lock, timeout_s=60, what="writer"):  # free once the holder is reaped; 60 s only stops a hang
        pass


def _build_once(target: str, log: str, lock: str) -> None:
    with locked(Path(lock), timeout_s=60, what="build"):
        if Path(target).exists():
            return
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.2)  # long enough that the others queue up
        Path(target).write_text("built")


def test_double_checked_work_is_done_once_by_racing_processes(tmp_path, lock):
    target, log = tmp_path / "artifact", tmp_path / "builds.log"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_build_once, args=(str(target), str(log), str(lock))) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * 6
    assert len(log.read_text().splitlines()) == 1
    assert target.read_text() == "built"


def test_abandoned_download_directories_of_dead_runs_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = holder(tmp_path / "x.lock")
    try:
        for pid in (dead.pid, live.pid, os.getpid()):
            (tmp_path / "downloads" / f"{pid}-abc" / "apt-archives").mkdir(parents=True)
        (tmp_path / "downloads" / f"{dead.pid}-abc" / "half.deb").write_bytes(b"partial")
        remove_abandoned_downloads(tmp_path / "downloads")
        left = sorted(p.name for p in (tmp_path / "downloads").iterdir())
    finally:
        live.kill()
        live.wait()
    assert left == sorted([f"{live.pid}-abc", f"{os.getpid()}-abc"])
