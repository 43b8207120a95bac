"""The fast paths, for real: x86_64 boots its vmlinux through PVH, a kernel
that cannot boot through PVH still boots (as the bzImage, with a note), and
the KVM probe decides within 5 s, is remembered, and --reprobe ignores that.

Real QEMU and the pinned Debian kernels from the shared cache."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import run_ccvm

from ccvm.guest import vmlinux
from ccvm.guest.assets import AssetStore
from ccvm.matrix.axes import Accel, Arch, Machine
from ccvm.matrix.model import load_matrix
from ccvm.qemu.lifeprobe import SIGN_OF_LIFE_TIMEOUT_S, sign_of_life
from ccvm.qemu.probe import KvmProbe, kvm_static_reason

ROOT = Path(__file__).resolve().parent.parent


def ccvm(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return run_ccvm(*args, cwd=ROOT, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def store() -> AssetStore:
    return AssetStore(load_matrix(ROOT / "matrix").guest)


def junit_properties(path: Path) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in ET.parse(path).getroot().iter("property")}


def test_the_launch_plan_boots_the_pvh_vmlinux_on_x86_64_and_the_image_on_aarch64(store):
    for arch in Arch:
        result = ccvm("vm", "--arch", str(arch), "--", "true", env={"CCVM_DRYRUN": "1"})
        assert result.returncode == 0, result.stderr
        argv = json.loads(result.stdout)["qemu_argv"]
        kernel = Path(argv[argv.index("-kernel") + 1])
        assets = store.for_arch(arch)
        assert kernel == assets.kernel
        if arch is Arch.X86_64:
            assert kernel.parent.name == "vmlinux" and vmlinux.is_elf(kernel)
        else:
            assert kernel == assets.kernel_image


def test_a_kernel_that_cannot_boot_through_pvh_still_passes_every_scenario_as_a_bzimage(tmp_path, store):
    pinned = store.for_arch(Arch.X86_64)
    # The pinned bzImage with its payload_length zeroed: ccvm cannot find the
    # compressed kernel any more, while QEMU and the kernel's own decompressor
    # do not use the field, so it still boots as a bzImage.
    image = bytearray(pinned.kernel_image.read_bytes())
    struct.pack_into("<I", image, vmlinux.PAYLOAD_AT + 4, 0)
    kernel = tmp_path / "bzImage-no-payload-field"
    kernel.write_bytes(bytes(image))
    modules = next(pinned.kernel_image.parent.glob("modules-*"))
    junit = tmp_path / "j.xml"
    result = ccvm(
        "boot",
        "--cell",
        "x86_64-tcg-q35",
        "--kernel",
        f"x86_64={kernel}",
        "--modules",
        f"x86_64={modules}",
        "--junit",
        str(junit),
        "--reports",
        str(tmp_path / "r"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "booting the bzImage" in result.stdout  # the note, before the cells start
    props = junit_properties(junit)
    assert "lies outside" in props["asset_notes"] and "booting the bzImage" in props["asset_notes"]
    argv = json.loads(props["qemu_argv"])
    assert argv[argv.index("-kernel") + 1] == str(kernel.resolve())


def test_the_sign_of_life_is_the_first_kernel_line_and_comes_fast_under_tcg(tmp_path, store):
    """The positive case on any host: a guest that runs prints its first line
    and is decided by it, at once (TCG stands in for a working KVM here).  The
    wait is long: TCG on a loaded host may take longer than KVM's 4 s to print."""
    for arch, machine in ((Arch.X86_64, Machine.Q35), (Arch.AARCH64, Machine.VIRT)):
        life = sign_of_life(
            arch=arch,
            accel=Accel.TCG,
            machine=machine,
            kernel=store.for_arch(arch).kernel,
            log_dir=tmp_path / str(arch),
            timeout_s=120,
        )
        assert life.alive, life.reason
        assert life.seconds < 60  # decided by the line, not at the timeout: halfway to it
        assert b"Linux version" in (tmp_path / str(arch) / "console.log").read_bytes()


def quick_exit(tmp_path: Path, timeout_s: float = SIGN_OF_LIFE_TIMEOUT_S):
    """A probe of a QEMU that refuses its kernel and exits at once: how long QEMU takes to start, fail and
    be reaped on this host now (the overhead every probe pays on top of its wait)."""
    bogus = tmp_path / "not-a-kernel"
    bogus.write_bytes(b"nothing bootable here" * 10)
    return sign_of_life(
        arch=Arch.X86_64, accel=Accel.TCG, machine=Machine.Q35, kernel=bogus, log_dir=tmp_path, timeout_s=timeout_s
    )


def test_a_qemu_that_exits_at_once_is_decided_at_once_with_its_error(tmp_path):
    life = quick_exit(tmp_path, timeout_s=60)
    assert not life.alive and life.seconds < 30  # decided at its exit, not at the 60 s timeout
    assert "QEMU exited" in life.reason and "invalid kernel header" in life.reason  # QEMU's own last line


@pytest.fixture
def kvm_here() -> None:
    reason = kvm_static_reason(Arch.X86_64)
    if reason:
        pytest.skip(f"the KVM probe cannot be tried here: {reason}")


def timed_probe(store: AssetStore, tmp_path: Path, *, reprobe: bool):
    probe = KvmProbe(store.for_arch, log_root=tmp_path / "logs", reprobe=reprobe, memory_root=tmp_path / "memory")
    started = time.monotonic()
    result = probe.result(Arch.X86_64)
    return result, time.monotonic() - started


def test_the_kvm_probe_decides_within_5s_is_remembered_and_reprobe_ignores_it(tmp_path, store, kvm_here):
    store.for_arch(Arch.X86_64)  # assets prepared outside the timing, as a command does before its cells
    # Its wait (SIGN_OF_LIFE_TIMEOUT_S, 4 s) plus QEMU's start and stop: 5 s on a quiet host, more on a busy one
    # (three times the start and stop measured now, at least 30 s), never the minutes of a boot it guards against.
    bound_s = SIGN_OF_LIFE_TIMEOUT_S + max(30.0, 3 * quick_exit(tmp_path).seconds)
    fresh, fresh_s = timed_probe(store, tmp_path, reprobe=False)
    assert fresh_s <= bound_s, fresh.reason
    assert not fresh.remembered and fresh.reason
    if not fresh.usable:  # this host: /dev/kvm opens, the guest hangs (or QEMU aborts)
        assert "hangs" in fresh.reason or "QEMU exited" in fresh.reason
    log = tmp_path / "logs" / "kvm-probe-x86_64" / "qemu.log"
    first_probe_at = log.stat().st_mtime_ns

    again, again_s = timed_probe(store, tmp_path, reprobe=False)
    assert again.remembered and again.usable == fresh.usable and again_s < max(1.0, fresh_s / 2)
    assert fresh.reason in again.reason and "--reprobe" in again.reason
    assert log.stat().st_mtime_ns == first_probe_at  # nothing was started

    forced, forced_s = timed_probe(store, tmp_path, reprobe=True)
    assert not forced.remembered and forced.usable == fresh.usable and forced_s <= bound_s
    assert log.stat().st_mtime_ns > first_probe_at


def kvm_row(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return {c["id"]: c for c in json.loads(result.stdout)["cells"]}["x86_64-kvm-q35"]


def test_ccvm_matrix_and_boot_take_reprobe(tmp_path, kvm_here):
    from ccvm.qemu.probe_memory import memory_dir

    remembered = memory_dir() / "kvm-x86_64.json"
    fresh = kvm_row(ccvm("matrix", "--json", "--reprobe"))
    assert "--reprobe probes again" not in fresh["reason"]
    probed_at = remembered.stat().st_mtime_ns  # the fresh result was remembered
    recalled = kvm_row(ccvm("matrix", "--json"))
    assert recalled["runnable"] == fresh["runnable"]
    assert remembered.stat().st_mtime_ns == probed_at  # reused, not probed again (not timed: a CLI start is not)
    if not recalled["runnable"]:  # the reason says where it came from
        assert recalled["reason"].startswith(fresh["reason"]) and "--reprobe probes again" in recalled["reason"]

    junit = tmp_path / "j.xml"
    boot = ccvm("boot", "--reprobe", "--cell", "x86_64-kvm-q35", "--junit", str(junit), "--reports", str(tmp_path))
    assert boot.returncode == 0, boot.stdout + boot.stderr
    assert remembered.stat().st_mtime_ns > probed_at  # boot --reprobe probed afresh and remembered that
    for skipped in ET.parse(junit).getroot().iter("skipped"):
        assert "--reprobe probes again" not in skipped.get("message"), skipped.get("message")
