#!/usr/bin/env python3
"""Boot benchmark: ratios measured side by side in one run.

    .venv/bin/python bench/boot_bench.py [--rounds N]

For each tcg cell it boots the stub guest through the runner (ccvm's
launcher core: pexpect channels, log files, fact parsing) and with bare
QEMU started with the very same argv, kernel and initramfs (a minimal
socket reader waiting for the exit line), interleaved, N rounds each, and
compares medians.  Also: aarch64 against x86_64, the tuned aarch64 TCG
flags against naive ones, a warm full `ccvm boot` against its slowest cell,
how soon a kernel panic is reported, the x86_64 PVH boot against the
bzImage (bare QEMU, same initramfs), the x86_64 stub run against a bare
bzImage boot to a trivial init (the floor), and the KVM probe on a host
whose KVM hangs.  Targets (2-core machine) are printed beside each ratio;
the figures go into docs/src/performance.md.

    .venv/bin/python bench/boot_bench.py --sweep [--rounds N]

instead measures the CPU model and -smp choices (bare QEMU, stub guest,
interleaved): x86_64 -smp 1/2, aarch64 max,pauth-impdef=on/cortex-a57 x
-smp 1/2, alone and with the other arch booting at the same time.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ccvm import processes  # noqa: E402
from ccvm.errors import GuestFailure  # noqa: E402
from ccvm.guest import cpio  # noqa: E402
from ccvm.guest.assets import AssetStore  # noqa: E402
from ccvm.matrix.axes import Accel, Arch  # noqa: E402
from ccvm.matrix.model import load_matrix  # noqa: E402
from ccvm.qemu.argv import qemu_argv  # noqa: E402
from ccvm.qemu.guestrun import run_guest  # noqa: E402
from ccvm.qemu.launch import GuestRequest, stage  # noqa: E402
from ccvm.qemu.probe import KvmProbe, kvm_static_reason  # noqa: E402

TIMEOUT_S = 180.0
CORES = load_matrix(ROOT / "matrix").cells[0].settings.cores  # the matrix default, as ccvm boots


def request(arch: Arch, share: Path, cores: int = CORES) -> GuestRequest:
    return GuestRequest(
        arch=arch,
        accel=Accel.TCG,
        machine=arch.facts.default_machine,
        memory_mib=512,
        cores=cores,
        program=("ccvm-stub", "a b", ""),
        share_dir=share,
    )


def runner_boot(store: AssetStore, arch: Arch, work: Path) -> float:
    result = run_guest(request(arch, work), store.for_arch(arch), log_dir=work / "logs", timeout_s=TIMEOUT_S)
    return result.seconds


def _connect(path: Path, proc: subprocess.Popen, deadline: float) -> socket.socket:
    while time.monotonic() < deadline and proc.poll() is None:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.connect(str(path))
            return sock
        except OSError:
            sock.close()
            time.sleep(0.01)
    raise RuntimeError(f"bare QEMU never opened {path}")


def bare_boot(argv: list[str], scratch: Path) -> float:
    """The same argv, no ccvm in the loop: drain the serial and program
    sockets, read the control socket until the exit line."""
    started = time.monotonic()
    deadline = started + TIMEOUT_S
    proc = processes.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        sockets = [_connect(scratch / name, proc, deadline) for name in ("serial.sock", "agent.sock", "control.sock")]
        control = sockets[2]
        seen = b""
        while b"CCVM:EXIT" not in seen:
            if time.monotonic() > deadline:
                raise RuntimeError("bare QEMU: no exit line")
            ready, _, _ = select.select(sockets, [], [], 0.2)
            for sock in ready:
                chunk = sock.recv(65536)
                if not chunk and sock is control:
                    raise RuntimeError("bare QEMU: control channel closed early")
                if sock is control:
                    seen += chunk
        return time.monotonic() - started
    finally:
        processes.stop(proc)


def staged_argv(store: AssetStore, arch: Arch, work: Path, cores: int = CORES, cpu: str | None = None, bzimage=False):
    scratch = Path(tempfile.mkdtemp(prefix="ccvm-bench-", dir=work))
    assets = store.for_arch(arch)
    if bzimage:  # the same guest, booted from the packaged bzImage instead of the PVH vmlinux
        from dataclasses import replace

        assets = replace(assets, kernel=assets.kernel_image)
    argv = qemu_argv(stage(request(arch, work, cores), assets, scratch))
    if cpu is not None:
        argv[argv.index("-cpu") + 1] = cpu
    return argv, scratch


def median_pair(rounds: int, first, second) -> tuple[float, float]:
    """Medians of both, measured interleaved (drift in machine load hits both sides) and in
    alternating order (A B, then B A): whichever runs first in a pair pays for the teardown of
    the run before it, about 0.1 s here, which otherwise lands on one side only."""
    a, b = [], []
    for index in range(rounds):
        if index % 2 == 0:
            a.append(first())
            b.append(second())
        else:
            b.append(second())
            a.append(first())
    return statistics.median(a), statistics.median(b)


def full_boot_wall(cells: list[str], work: Path) -> float:
    started = time.monotonic()
    args = [sys.executable, "-m", "ccvm", "boot", "--reports", str(work / "r"), "--junit", str(work / "j.xml")]
    for cell in cells:
        args += ["--cell", cell]
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True, timeout=900)
    return time.monotonic() - started


def whole_runs(rounds: int, work: Path, cells: tuple[str, ...]) -> tuple[dict[str, float], float]:
    """Medians of a warm `ccvm boot` of each cell alone and of all of them, interleaved."""
    alone: dict[str, list[float]] = {cell: [] for cell in cells}
    together: list[float] = []
    for index in range(rounds):
        if index % 2:
            together.append(full_boot_wall(list(cells), work))
        for cell in cells:
            alone[cell].append(full_boot_wall([cell], work))
        if not index % 2:
            together.append(full_boot_wall(list(cells), work))
    return {cell: statistics.median(times) for cell, times in alone.items()}, statistics.median(together)


def panic_latency(store: AssetStore, work: Path) -> float:
    empty = work / "empty.cpio"
    buffer = io.BytesIO()
    cpio.write_newc(buffer, [cpio.Entry.directory("dev")])
    empty.write_bytes(buffer.getvalue())
    assets = store.for_arch(Arch.AARCH64)
    from dataclasses import replace

    try:
        run_guest(
            request(Arch.AARCH64, work), replace(assets, initrd=empty), log_dir=work / "panic", timeout_s=TIMEOUT_S
        )
    except GuestFailure as exc:
        reported = time.monotonic()
        line_at = getattr(exc, "line_at", None)
        return reported - line_at if line_at else float("nan")
    raise RuntimeError("the panic boot did not fail")


def trivial_initramfs(store: AssetStore, work: Path) -> Path:
    """busybox and an /init that powers off at once: no modules, no share."""
    busybox = next((store.root / "busybox").glob("*/busybox")).read_bytes()
    init = b"#!/bin/busybox sh\n/bin/busybox poweroff -f\n"
    entries = [cpio.Entry.directory("bin"), cpio.Entry.directory("dev")]
    entries += [cpio.Entry.file("bin/busybox", busybox, 0o755), cpio.Entry.file("init", init, 0o755)]
    buffer = io.BytesIO()
    cpio.write_newc(buffer, entries)
    path = work / "trivial.cpio"
    path.write_bytes(buffer.getvalue())
    return path


def floor_boot(store: AssetStore, trivial: Path) -> float:
    """The floor: the pinned bzImage, bare QEMU, to a trivial init's power-off."""
    assets = store.for_arch(Arch.X86_64)
    argv = ["qemu-system-x86_64", "-M", "q35", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", str(CORES)]
    argv += ["-m", "512M", "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none", "-serial", "null"]
    argv += ["-kernel", str(assets.kernel_image), "-initrd", str(trivial), "-append", "console=ttyS0 panic=-1 quiet"]
    started = time.monotonic()
    proc = processes.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        proc.wait(timeout=TIMEOUT_S)
    finally:
        processes.stop(proc)
    return time.monotonic() - started


def probe_times(store: AssetStore, work: Path) -> tuple[float, float, str] | None:
    """A fresh KVM probe and a remembered one (seconds, as a command sees them),
    or None where KVM cannot even be tried (no /dev/kvm)."""
    if kvm_static_reason(Arch.X86_64):
        return None
    memory = work / "probe-memory"
    fresh_started = time.monotonic()
    fresh = KvmProbe(store.for_arch, log_root=work / "probe", reprobe=True, memory_root=memory).result(Arch.X86_64)
    fresh_s = time.monotonic() - fresh_started
    again_started = time.monotonic()
    KvmProbe(store.for_arch, log_root=work / "probe", memory_root=memory).result(Arch.X86_64)
    return fresh_s, time.monotonic() - again_started, fresh.reason


def row(label: str, ratio: float, target: str, ok: bool) -> str:
    return f"  {label:<52} {ratio:6.2f}x   target {target:<8} {'met' if ok else 'MISSED'}"


# -- CPU model and -smp sweep (--sweep) ----------------------------------------

ARM_MAX, ARM_A57 = "max,pauth-impdef=on", "cortex-a57"
SWEEP_ALONE = (
    ("x86_64 max -smp 1", Arch.X86_64, 1, None),
    ("x86_64 max -smp 2", Arch.X86_64, 2, None),
    (f"aarch64 {ARM_MAX} -smp 1", Arch.AARCH64, 1, ARM_MAX),
    (f"aarch64 {ARM_MAX} -smp 2", Arch.AARCH64, 2, ARM_MAX),
    (f"aarch64 {ARM_A57} -smp 1", Arch.AARCH64, 1, ARM_A57),
    (f"aarch64 {ARM_A57} -smp 2", Arch.AARCH64, 2, ARM_A57),
)
SWEEP_PAIRS = (  # both arches booting at once, as the boot matrix runs them: wall time of the pair
    (f"pair -smp 1 (aarch64 {ARM_MAX})", 1, ARM_MAX),
    (f"pair -smp 2 (aarch64 {ARM_MAX})", 2, ARM_MAX),
    (f"pair -smp 1 (aarch64 {ARM_A57})", 1, ARM_A57),
    (f"pair -smp 2 (aarch64 {ARM_A57})", 2, ARM_A57),
)


def _pair_boot(store: AssetStore, work: Path, cores: int, arm_cpu: str) -> float:
    x86 = staged_argv(store, Arch.X86_64, work, cores=cores)
    arm = staged_argv(store, Arch.AARCH64, work, cores=cores, cpu=arm_cpu)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda pair: bare_boot(*pair), (x86, arm)))
    return time.monotonic() - started


def _spread(label: str, values: list[float]) -> str:
    return f"  {label:<44} median {statistics.median(values):5.2f}  min {min(values):5.2f}  max {max(values):5.2f}"


def sweep(store: AssetStore, work: Path, rounds: int) -> None:
    """Every configuration once per round, the order rotated each round, so
    load from other work on the machine falls on all of them alike."""
    alone: dict[str, list[float]] = {label: [] for label, *_ in SWEEP_ALONE}
    pairs: dict[str, list[float]] = {label: [] for label, *_ in SWEEP_PAIRS}
    for index in range(rounds):
        shift = index % len(SWEEP_ALONE)
        for label, arch, cores, cpu in SWEEP_ALONE[shift:] + SWEEP_ALONE[:shift]:
            alone[label].append(bare_boot(*staged_argv(store, arch, work, cores=cores, cpu=cpu)))
        shift = index % len(SWEEP_PAIRS)
        for label, cores, cpu in SWEEP_PAIRS[shift:] + SWEEP_PAIRS[:shift]:
            pairs[label].append(_pair_boot(store, work, cores, cpu))
    print(f"bare QEMU, stub guest, boot to its exit line, {rounds} interleaved rounds (seconds):")
    for label, values in alone.items():
        print(_spread(label, values))
    print("both arches at once (wall time of the pair):")
    for label, values in pairs.items():
        print(_spread(label, values))


def stub_run(work: Path) -> float:
    """A whole `ccvm vm --arch x86_64 -- ccvm-stub` run, as a user starts it."""
    started = time.monotonic()
    args = [sys.executable, "-m", "ccvm", "--matrix", str(ROOT / "matrix"), "vm", "--arch", "x86_64", "--accel", "tcg"]
    args += ["--", "ccvm-stub", "a b", ""]
    subprocess.run(args, cwd=work, check=True, capture_output=True, timeout=TIMEOUT_S)
    return time.monotonic() - started


def bare_pair(store: AssetStore, work: Path, arch: Arch, **first: object):
    """A bare boot of the default argv for ``arch``, and one with ``first`` changed."""

    def default():
        return bare_boot(*staged_argv(store, arch, work))

    def changed():
        return bare_boot(*staged_argv(store, arch, work, **first))

    return changed, default


def measure(store: AssetStore, work: Path, rounds: int) -> dict:
    figures: dict = {"runner": {}}
    print(f"medians over {rounds} interleaved rounds (seconds; boots are to the stub's exit line):")
    for arch in (Arch.X86_64, Arch.AARCH64):
        _, bare = bare_pair(store, work, arch)
        runner, bare_s = median_pair(rounds, lambda arch=arch: runner_boot(store, arch, work), bare)
        figures["runner"][arch] = (runner, bare_s)
        print(f"  {arch}-tcg: runner {runner:.2f}  bare QEMU {bare_s:.2f}")
    naive, tuned = bare_pair(store, work, Arch.AARCH64, cores=1, cpu="max")
    figures["naive"], figures["tuned"] = median_pair(rounds, naive, tuned)
    tuned_argv = staged_argv(store, Arch.AARCH64, work)[0]
    tuned_flags = f"-cpu {tuned_argv[tuned_argv.index('-cpu') + 1]} -smp {tuned_argv[tuned_argv.index('-smp') + 1]}"
    print(f"  aarch64 tcg tuned ({tuned_flags}) {figures['tuned']:.2f}  naive (-cpu max -smp 1) {figures['naive']:.2f}")
    bzimage, pvh = bare_pair(store, work, Arch.X86_64, bzimage=True)
    figures["bzimage"], figures["pvh"] = median_pair(rounds, bzimage, pvh)
    print(f"  x86_64 bare, same initramfs: bzImage {figures['bzimage']:.2f}  PVH vmlinux {figures['pvh']:.2f}")
    trivial = trivial_initramfs(store, work)
    figures["stub"], figures["floor"] = median_pair(rounds, lambda: stub_run(work), lambda: floor_boot(store, trivial))
    print(
        f"  ccvm vm --arch x86_64 -- ccvm-stub {figures['stub']:.2f}  bare bzImage, trivial init {figures['floor']:.2f}"
    )
    figures["singles"], figures["full"] = whole_runs(rounds, work, ("x86_64-tcg-q35", "aarch64-tcg-virt"))
    alone = ", ".join(f"{c} {s:.1f}" for c, s in figures["singles"].items())
    print(f"  warm ccvm boot alone: {alone}; both cells {figures['full']:.1f}")
    figures["probe"] = probe_times(store, work)
    if figures["probe"]:
        fresh, again, reason = figures["probe"]
        print(f"  KVM probe: fresh {fresh:.2f} ({reason}); remembered {again:.2f}")
    figures["latency"] = panic_latency(store, work)
    print(f"  kernel panic line to failure reported: {figures['latency']:.2f}")
    return figures


def seconds_row(label: str, value: float, limit: float) -> str:
    return f"  {label:<52} {value:6.2f}s   target <= {limit:<5g}  {'met' if value <= limit else 'MISSED'}"


def print_ratios(f: dict) -> None:
    print("\nratios:")
    for arch, (runner, bare_s) in f["runner"].items():
        print(row(f"runner / bare QEMU, {arch}-tcg", runner / bare_s, "<= 1.05", runner / bare_s <= 1.05))
    arm_vs_x86 = f["runner"][Arch.AARCH64][0] / f["runner"][Arch.X86_64][0]
    print(row("aarch64-tcg / x86_64-tcg (runner)", arm_vs_x86, "<= 1.30", arm_vs_x86 <= 1.3))
    print(row("aarch64 naive / tuned TCG flags", f["naive"] / f["tuned"], "> 1", f["naive"] > f["tuned"]))
    print(row("x86_64 PVH vmlinux / bzImage (bare)", f["pvh"] / f["bzimage"], "< 1", f["pvh"] < f["bzimage"]))
    print(row("x86_64 stub run / bare bzImage floor", f["stub"] / f["floor"], "<= 0.60", f["stub"] / f["floor"] <= 0.6))
    # A cell's two boots run side by side, so one cell alone already fills both cores of a 2-core
    # host: the whole run is measured against the cells run alone one after another.
    one_by_one = sum(f["singles"].values())
    whole = f["full"] / one_by_one
    print(row("warm full ccvm boot / cells alone, one by one", whole, "<= 1.10", whole <= 1.1))
    full_vs_floor = f["full"] / f["floor"]
    print(row("warm ccvm boot, both tcg cells / bare bzImage floor", full_vs_floor, "<= 1.30", full_vs_floor <= 1.3))
    if f["probe"]:
        print(seconds_row("KVM probe on a host whose KVM hangs (fresh)", f["probe"][0], 5.0))
        print(seconds_row("KVM probe, remembered result", f["probe"][1], 1.0))
    else:
        print("  KVM probe: not measured (no /dev/kvm here)")
    print(seconds_row("panic reported after the panic line", f["latency"], 1.0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="measure the CPU model and -smp choices instead")
    args = parser.parse_args()
    store = AssetStore(load_matrix(ROOT / "matrix").guest)
    with tempfile.TemporaryDirectory(prefix="ccvm-bench-") as tmp:
        work = Path(tmp)
        if args.sweep:
            sweep(store, work, args.rounds)
        else:
            print_ratios(measure(store, work, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
