"""Runs sharing one guest cache, for real: the Debian archive, apt-get and QEMU.

Each test starts from an empty cache (its own XDG_CACHE_HOME), so it
fetches the package lists and the x86_64 kernel and busybox from the
archive: slow and networked, hence few, and only the x86_64 cell.  A run
says ``guest assets for ARCH: downloading PACKAGE VERSION`` each time it
starts a download, which is what the tests count.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from clirun import ccvm_argv

from ccvm.files import sha256_file

ROOT = Path(__file__).resolve().parent.parent
CELL = "x86_64-tcg-q35"
RUN_TIMEOUT_S = 600  # a cold run takes about a minute; this only stops a hang
DOWNLOADING = re.compile(r"^guest assets for x86_64: downloading (\S+) (\S+)$", re.MULTILINE)
WAITING = re.compile(r"^guest assets for x86_64: waiting for another ccvm run \(pid (\d+)\) (.+)$", re.MULTILINE)


def start_boot(cache: Path, work: Path) -> subprocess.Popen:
    work.mkdir(parents=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.Popen(
        ccvm_argv("boot", "--cell", CELL, "--reports", str(work), "--junit", str(work / "j.xml")),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen) -> str:
    try:
        output, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"ccvm boot did not finish in {RUN_TIMEOUT_S}s:\n{output}")
    assert proc.returncode == 0, output
    assert re.search(rf"^\[1/1\] boot\.{CELL}: pass", output, re.MULTILINE), output
    return output


def kernel_then_busybox(packages: list[str]) -> bool:
    return len(packages) == 2 and packages[0].startswith("linux-image-") and packages[1] == "busybox-static"


def assert_trusted_debs(debs: Path, *, count: int) -> None:
    """Every package in the trusted place is whole: named by its own sha256."""
    found = sorted(debs.glob("*.deb"))
    assert len(found) == count, found
    for deb in found:
        assert sha256_file(deb) == deb.stem, deb


def test_two_cold_runs_at_once_both_pass_and_download_each_package_once(tmp_path):
    cache = tmp_path / "cache"
    runs = [start_boot(cache, tmp_path / f"run{i}") for i in (1, 2)]
    outputs = [finish(proc) for proc in runs]
    downloads = [match.group(1) for output in outputs for match in DOWNLOADING.finditer(output)]
    assert len(downloads) == 2 and kernel_then_busybox(sorted(downloads, reverse=True)), outputs
    assert_trusted_debs(cache / "ccvm" / "debs", count=2)
    # The lists are fetched by one run while the other waits, saying for whom.
    waits = [(int(m.group(1)), m.group(2)) for output in outputs for m in WAITING.finditer(output)]
    assert waits, outputs
    pids = {proc.pid for proc in runs}
    assert all(pid in pids for pid, _ in waits), waits
    assert list((cache / "ccvm" / "downloads").iterdir()) == []  # every staging directory removed


def _wait_for_partial_download(downloads: Path, proc: subprocess.Popen, timeout_s: float = 300) -> Path:
    """The kernel package while apt-get is still writing it (apt-get download writes it in place)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if downloads.is_dir():
            partial = [f for f in downloads.rglob("linux-image-*.deb") if f.stat().st_size > 0]
            if partial:
                return partial[0]
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"no kernel download started within {timeout_s}s:\n{proc.communicate()[0]}")


def test_a_run_killed_mid_download_leaves_nothing_trusted_and_the_next_run_passes(tmp_path):
    cache = tmp_path / "cache"
    debs, downloads = cache / "ccvm" / "debs", cache / "ccvm" / "downloads"
    first = start_boot(cache, tmp_path / "killed")
    partial = _wait_for_partial_download(downloads, first)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    size = partial.stat().st_size if partial.exists() else 0
    assert 0 < size < 60_000_000, size  # really mid-download: the package is about 70 MB
    assert not debs.exists() or not list(debs.glob("*.deb"))  # nothing reached the trusted place
    again = finish(start_boot(cache, tmp_path / "again"))
    # The half-written kernel was not trusted: fetched again, then busybox.
    assert kernel_then_busybox([m.group(1) for m in DOWNLOADING.finditer(again)]), again
    assert not partial.parent.exists()  # the killed run's staging directory was cleared away
    assert_trusted_debs(debs, count=2)
