#!/usr/bin/env python3
"""Keystroke-to-echo latency in the guest shell under TCG, measured side by side.

    .venv/bin/python bench/tty_bench.py [--rounds N] [--keys K]

For each tcg arch it starts the guest shell under a pseudo-terminal in two
ways, interleaved, N rounds each, alternating which goes first (the
conventions of bench/boot_bench.py):

  ccvm       ``ccvm vm --shell``: ccvm holds the terminal and relays the
             keys and the echo over the program channel's socket (and the
             window size on its own port);
  bare QEMU  the very same guest, kernel and initramfs, with QEMU's own
             stdio chardev on the terminal (what ``ccvm vm --shell`` did
             before it relayed), no ccvm in the loop.

In each session it types K keys at the shell's prompt, one at a time, and
times each from the write on the terminal to the key's echo read back
(busybox sh's line editor echoes every key); the figure is the median over
all keys of all rounds.  The ratio ccvm / bare QEMU, with its target, says
whether the relay makes the shell sluggish; the figures go into
docs/src/performance.md.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from boot_bench import row  # noqa: E402

from ccvm import processes  # noqa: E402
from ccvm.checks.tty.screen import set_window_size  # noqa: E402
from ccvm.guest.assets import AssetStore  # noqa: E402
from ccvm.matrix.axes import Accel, Arch  # noqa: E402
from ccvm.matrix.model import load_matrix  # noqa: E402
from ccvm.qemu.argv import qemu_argv  # noqa: E402
from ccvm.qemu.launch import GuestRequest, Mode, stage  # noqa: E402

BOOT_S = 180.0
ECHO_TIMEOUT_S = 5.0
GAP_S = 0.02  # between keys: a fast typist, not a paste
KILL_LINE = b"\x15"  # Ctrl-U: the line editor forgets what was typed
TARGET = 1.25  # a quarter of a ~1.5 ms echo: unfelt; a relay that polls (10 ms) or sleeps misses it by far


def ccvm_argv(arch: Arch) -> list[str]:
    return [sys.executable, "-m", "ccvm", "--matrix", str(ROOT / "matrix"), "vm", "--arch", str(arch)]


def bare_argv(store: AssetStore, arch: Arch, work: Path) -> list[str]:
    """The shell guest with QEMU's stdio on the terminal: hvc0 is the terminal, the rest goes nowhere."""
    request = GuestRequest(
        arch=arch,
        accel=Accel.TCG,
        machine=arch.facts.default_machine,
        memory_mib=512,
        cores=1,
        program=("sh",),
        share_dir=work,
        mode=Mode.SHELL,
    )
    argv = qemu_argv(stage(request, store.for_arch(arch), Path(tempfile.mkdtemp(prefix="tty-bench-", dir=work))))
    chardevs = {"serial0": "null,id=serial0", "agent0": "stdio,id=agent0,signal=off", "ctl0": "null,id=ctl0"}
    for index, word in enumerate(argv):
        for ident, chardev in chardevs.items():
            if argv[index - 1] == "-chardev" and f"id={ident}," in word:
                argv[index] = chardev
    return argv


class Session:
    """One shell on one pseudo-terminal (30x100)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        set_window_size(slave, 30, 100)
        self.proc = processes.spawn(
            argv, controlling_tty=True, stdin=slave, stdout=slave, stderr=slave, cwd=str(cwd), env=env
        )
        os.close(slave)

    def read_until(self, wanted: bytes, timeout_s: float) -> bytes:
        seen = b""
        deadline = time.monotonic() + timeout_s
        while wanted not in seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no {wanted!r} within {timeout_s:g}s; last output {seen[-200:]!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                chunk = os.read(self.master, 65536)
                if not chunk:
                    raise RuntimeError("the shell ended")
                seen += chunk
        return seen

    def drain(self, quiet_s: float = 0.3) -> None:
        while select.select([self.master], [], [], quiet_s)[0]:
            os.read(self.master, 65536)

    def latencies(self, keys: int) -> list[float]:
        self.read_until(b"# ", BOOT_S)
        self.drain()
        found = []
        for index in range(keys):
            key = bytes([ord("a") + index % 26])
            started = time.perf_counter()
            os.write(self.master, key)
            self.read_until(key, ECHO_TIMEOUT_S)
            found.append(time.perf_counter() - started)
            time.sleep(GAP_S)
            if index % 40 == 39:
                os.write(self.master, KILL_LINE)
                self.drain(0.1)
        return found

    def close(self) -> None:
        try:
            os.write(self.master, KILL_LINE + b"exit\r")
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        processes.stop(self.proc, term_grace_s=1.0)
        processes.forget(self.proc)
        os.close(self.master)


def measure(argv: list[str], cwd: Path, env: dict[str, str], keys: int) -> list[float]:
    session = Session(argv, cwd, env)
    try:
        return session.latencies(keys)
    finally:
        session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keys", type=int, default=100, help="keys typed per session")
    args = parser.parse_args()
    store = AssetStore(load_matrix(ROOT / "matrix").guest)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCVM_")}
    env["TERM"] = "xterm-256color"
    ratios = []
    with tempfile.TemporaryDirectory(prefix="ccvm-tty-bench-") as tmp:
        work = Path(tmp)
        env["HOME"] = str(work)
        for arch in (Arch.X86_64, Arch.AARCH64):
            ccvm: list[float] = []
            bare: list[float] = []
            for index in range(args.rounds):
                sides = [(ccvm, ccvm_argv(arch)), (bare, bare_argv(store, arch, work))]
                for found, argv in sides if index % 2 == 0 else reversed(sides):
                    found += measure(argv + (["--shell"] if found is ccvm else []), work, env, args.keys)
            ccvm_ms, bare_ms = statistics.median(ccvm) * 1000, statistics.median(bare) * 1000
            print(
                f"{arch}-tcg keystroke to echo, median of {len(ccvm)} keys each: "
                f"ccvm vm --shell {ccvm_ms:.2f} ms  bare QEMU stdio {bare_ms:.2f} ms"
            )
            ratios.append((arch, ccvm_ms / bare_ms))
    print("\nratios:")
    for arch, ratio in ratios:
        print(row(f"keystroke echo, ccvm / bare QEMU, {arch}-tcg", ratio, f"<= {TARGET:g}", ratio <= TARGET))
    return 0


if __name__ == "__main__":
    sys.exit(main())
