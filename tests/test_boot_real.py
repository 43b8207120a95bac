"""Boot tests: real QEMU, real Debian kernels, both architectures.

These use the shared guest cache ($XDG_CACHE_HOME/ccvm): the first run
downloads the pinned packages, later runs reuse them.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import run_ccvm
from junit_schema import assert_valid

from ccvm.guest import cpio
from ccvm.matrix.model import load_matrix

ROOT = Path(__file__).resolve().parent.parent
CASES = {"argv-verbatim", "share-overlay", "exit-status", "share-writable"}


def ccvm(*args: str, timeout: float = 600, tmpdir: Path | None = None) -> subprocess.CompletedProcess:
    """Run ccvm; with ``tmpdir`` its scratch and share directories (and so
    every QEMU command line it starts) carry that unique path."""
    env = {**os.environ, "TMPDIR": str(tmpdir)} if tmpdir else None
    return run_ccvm(*args, cwd=ROOT, env=env, timeout=timeout)


def junit_cases(path: Path) -> dict[str, dict[str, ET.Element]]:
    assert_valid(path)  # junit-10.xsd, as the Jenkins xUnit plugin enforces
    root = ET.parse(path).getroot()
    found: dict[str, dict[str, ET.Element]] = {}
    for case in root.iter("testcase"):
        found.setdefault(case.get("classname"), {})[case.get("name")] = case
    return found


def qemu_pids_mentioning(text: str) -> dict[int, str]:
    """pid -> command line of each QEMU whose command line holds the text."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "qemu-system" in cmdline and text in cmdline:
                found[int(proc.name)] = cmdline
    return found


def qemu_processes_mentioning(text: str) -> list[str]:
    return list(qemu_pids_mentioning(text).values())


def test_full_matrix_passes_tcg_and_explains_kvm(tmp_path):
    junit = tmp_path / "boot.xml"
    result = ccvm("boot", "--junit", str(junit), "--reports", str(tmp_path / "reports"))
    assert result.returncode == 0, result.stdout + result.stderr
    cases = junit_cases(junit)
    for cell in ("x86_64-tcg-q35", "aarch64-tcg-virt"):
        got = cases[f"boot.{cell}"]
        assert set(got) == CASES
        for name, case in got.items():
            assert case.find("failure") is None and case.find("skipped") is None, (cell, name)
        assert (tmp_path / "reports" / "boot" / cell / "attempt-1" / "overlay" / "console.log").is_file()
    for cell in ("x86_64-kvm-q35", "aarch64-kvm-virt"):
        for case in cases[f"boot.{cell}"].values():
            skipped = case.find("skipped")
            # A KVM cell either really passed or says why it was skipped.
            assert case.find("failure") is None
            assert skipped is None or skipped.get("message")
    # The table: one row per cell with its result and log.
    assert "aarch64-tcg-virt  pass" in result.stdout
    assert "kvm needs an aarch64 host" in result.stdout or "aarch64-kvm-virt  pass" in result.stdout


def test_junit_records_accel_argv_and_kernel_sha(tmp_path):
    junit = tmp_path / "boot.xml"
    result = ccvm("boot", "--cell", "aarch64-tcg-virt", "--junit", str(junit), "--reports", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    pin = load_matrix(ROOT / "matrix").guest.archs
    assert props["accel"] == "tcg"
    assert props["kernel_sha256"] in {p.kernel.sha256 for p in pin.values()} or props.get("asset_notes")
    assert props["qemu_argv"].startswith('["qemu-system-aarch64", "-M", "virt"')


@pytest.mark.parametrize("flag", ["--require", "--require-accel"])  # --require-accel: the older spelling
def test_require_kvm_turns_an_unusable_kvm_into_a_failure_and_allow_missing_under_ci_a_skip(tmp_path, flag):
    junit = tmp_path / "j.xml"
    args = ("boot", "--cell", "aarch64-kvm-virt", "--junit", str(junit), "--reports", str(tmp_path))
    result = ccvm(*args, flag, "kvm")
    if os.uname().machine == "aarch64" and result.returncode == 0:
        pytest.skip("this aarch64 host has working KVM: nothing to turn into a failure")
    assert result.returncode == 1
    assert "(required: --require kvm)" in junit.read_text()
    # Under CI the same fails without being asked; --allow-missing kvm makes it the skip it is locally.
    under_ci = {**os.environ, "CI": "true"}
    assert run_ccvm(*args, env=under_ci, timeout=600).returncode == 1
    assert "(required: CI is set (--allow-missing kvm exempts it))" in junit.read_text()
    allowed = run_ccvm(*args, "--allow-missing", "kvm", env=under_ci, timeout=600)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "<skipped" in junit.read_text() and "required" not in junit.read_text()


def _initramfs_without_init(path: Path) -> Path:
    buffer = io.BytesIO()
    cpio.write_newc(buffer, [cpio.Entry.directory("dev")])
    path.write_bytes(buffer.getvalue())
    return path


def test_kernel_panic_fails_fast_with_the_console_tail(tmp_path):
    initrd = _initramfs_without_init(tmp_path / "empty.cpio")
    started = time.monotonic()
    result = ccvm(
        "boot",
        "--cell",
        "aarch64-tcg-virt",
        "--initrd",
        f"aarch64={initrd}",
        "--timeout",
        "300",
        "--junit",
        str(tmp_path / "j.xml"),
        "--reports",
        str(tmp_path),
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    # A boot to the panic takes seconds (tens on a loaded host); waiting for the 300 s timeout is what this
    # guards against, and the bound lies halfway to it.
    assert elapsed < 150, f"a panic must not wait for the timeout ({elapsed:.0f}s)"
    text = (tmp_path / "j.xml").read_text()
    assert "Kernel panic" in text
    assert "last 40 lines of the kernel console" in text


def test_timeout_kills_qemu_and_reports(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = ccvm(
        "boot",
        "--cell",
        "x86_64-tcg-q35",
        "--timeout",
        "0.5",  # a TCG boot to the stub's exit line takes well over a second
        "--junit",
        str(tmp_path / "j.xml"),
        "--reports",
        str(tmp_path / "reports"),
        tmpdir=scratch,
    )
    assert result.returncode == 1
    assert "timed out waiting for" in (tmp_path / "j.xml").read_text()
    assert qemu_processes_mentioning(str(scratch)) == []


def test_sigterm_stops_every_qemu(tmp_path):
    reports = tmp_path / "reports"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ccvm",
            "boot",
            "--cell",
            "x86_64-tcg-q35",
            "--cell",
            "aarch64-tcg-virt",
            "--reports",
            str(reports),
            "--junit",
            str(tmp_path / "j.xml"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    deadline = time.monotonic() + 300  # both start in seconds; this only bounds a wait for one that never does
    while time.monotonic() < deadline and len(qemu_processes_mentioning(str(scratch))) < 2:
        time.sleep(0.2)
    running = qemu_pids_mentioning(str(scratch))
    assert len(running) == 2, "both cells' QEMU should be running by now"
    for pid in running:  # frozen, so neither guest can finish before ccvm handles the signal, however busy the host
        os.kill(pid, signal.SIGSTOP)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    # What was running is reported, failed with the reason, not lost.
    assert "interrupted by signal 15" in (tmp_path / "j.xml").read_text()
    assert qemu_processes_mentioning(str(scratch)) == []


def _private_cache(tmp_path: Path) -> Path:
    """A copy of the warm cache that no other run on this machine touches: large files hard-linked
    (nothing rewrites them in place: the cache replaces files by renaming), small ones copied."""
    from ccvm.files import cache_root

    ccvm("boot", "--cell", "aarch64-tcg-virt", "--junit", str(tmp_path / "warm.xml"), "--reports", str(tmp_path))

    def link_or_copy(source: str, target: str) -> None:
        if os.path.getsize(source) > 1 << 20:
            os.link(source, target)
        else:
            shutil.copy2(source, target)

    home = tmp_path / "xdg-cache"
    shutil.copytree(cache_root(), home / "ccvm", symlinks=True, copy_function=link_or_copy)
    return home


def test_warm_run_downloads_and_builds_nothing(tmp_path):
    xdg = _private_cache(tmp_path)
    cache = xdg / "ccvm"
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file() and "boot-times" not in p.name}
    env = {**os.environ, "XDG_CACHE_HOME": str(xdg)}
    result = run_ccvm(
        "boot",
        "--cell",
        "aarch64-tcg-virt",
        "--junit",
        str(tmp_path / "j.xml"),
        "--reports",
        str(tmp_path),
        env=env,
        timeout=600,  # the cell's own timeout (120 s) decides a slow boot; this only stops a hang
    )
    assert result.returncode == 0, result.stderr
    after = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file() and "boot-times" not in p.name}
    assert after == before


def test_kernel_modules_and_busybox_by_path_replace_the_pins(tmp_path):
    from ccvm.guest.assets import AssetStore
    from ccvm.matrix.axes import Arch

    guest = load_matrix(ROOT / "matrix").guest
    pinned = AssetStore(guest).for_arch(Arch.AARCH64)
    modules = next(pinned.kernel.parent.glob("modules-*"))
    cache = pinned.kernel.parent.parent.parent
    busybox = cache / "busybox" / guest.archs[Arch.AARCH64].busybox.sha256 / "busybox"
    # A copy in a deeper tree, like a kernel's lib/modules: found recursively.
    tree = tmp_path / "lib" / "modules" / "6.1" / "kernel"
    tree.mkdir(parents=True)
    for module in modules.glob("*.ko"):
        (tree / module.name).write_bytes(module.read_bytes())
    env = {**os.environ, "CCVM_BUSYBOX_AARCH64": str(busybox)}
    result = run_ccvm(
        "boot",
        "--cell",
        "aarch64-tcg-virt",
        "--kernel",
        f"aarch64={pinned.kernel}",
        "--modules",
        f"aarch64={tmp_path / 'lib'}",
        "--junit",
        str(tmp_path / "j.xml"),
        "--reports",
        str(tmp_path / "r"),
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    props = {p.get("name"): p.get("value") for p in ET.parse(tmp_path / "j.xml").getroot().iter("property")}
    assert props["kernel"] == str(pinned.kernel)  # the path, not a package, stood in


def test_modules_without_a_kernel_is_one_clear_error(tmp_path):
    result = ccvm(
        "boot",
        "--cell",
        "aarch64-tcg-virt",
        "--modules",
        f"aarch64={tmp_path}",
        "--junit",
        str(tmp_path / "j.xml"),
        "--reports",
        str(tmp_path),
    )
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "without a kernel" in result.stderr
