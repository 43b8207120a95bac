"""What this host can do: QEMU binaries, and whether KVM really works.

KVM counts as usable only when a guest shows a sign of life under it: its
kernel prints its first console line within ``SIGN_OF_LIFE_TIMEOUT_S``
(ccvm.qemu.lifeprobe).  /dev/kvm existing and opening proves nothing: on
some hosts a KVM guest hangs forever or QEMU aborts on its first MSR write.
The result is kept for the run (one probe per arch, guarded by a lock) and
remembered across runs (ccvm.qemu.probe_memory) until QEMU, the kernel or
/dev/kvm change; ``reprobe`` ignores a remembered result.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ccvm.errors import GuestError, GuestFailure
from ccvm.guest.assets import GuestAssets
from ccvm.matrix.axes import Accel, Arch, host_arch
from ccvm.memo import OncePerKey
from ccvm.processes import find_program, run
from ccvm.qemu import probe_memory
from ccvm.qemu.argv import qemu_binary
from ccvm.qemu.launch import GuestRequest
from ccvm.qemu.lifeprobe import SIGN_OF_LIFE_TIMEOUT_S, sign_of_life


@dataclass(frozen=True, kw_only=True)
class QemuInfo:
    arch: Arch
    path: str | None
    version: str

    @property
    def missing_reason(self) -> str:
        return f"{qemu_binary(self.arch)} not found (install {self.arch.facts.qemu_package})"


def _find_qemu(arch: Arch) -> QemuInfo:
    path = find_program(qemu_binary(arch), path_only=True)
    if path is None:
        return QemuInfo(arch=arch, path=None, version="")
    result = run([path, "--version"], timeout_s=10)
    version = result.stdout.splitlines()[0] if result.ok and result.stdout else "unknown (--version failed)"
    return QemuInfo(arch=arch, path=path, version=version)


_QEMU: OncePerKey[Arch, QemuInfo] = OncePerKey(_find_qemu)


def qemu_info(arch: Arch) -> QemuInfo:
    """The arch's QEMU and its version: looked up once per process."""
    return _QEMU.get(arch)


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    usable: bool
    reason: str  # why not, or how it was shown to work
    seconds: float = 0.0
    remembered: bool = False  # taken from an earlier run's probe, not probed now


def kvm_static_reason(arch: Arch) -> str | None:
    """Why KVM cannot work for ``arch`` without booting anything, or None."""
    here = host_arch()
    if arch != here:
        return f"kvm needs an {arch} host; this host is {here or 'another arch'}"
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm does not exist (no KVM in this kernel, or nested virtualisation is off)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not readable and writable by this user (add the user to the kvm group)"
    return None


class KvmProbe:
    def __init__(
        self,
        assets_for: Callable[[Arch], GuestAssets],
        *,
        log_root: Path,
        timeout_s: float = SIGN_OF_LIFE_TIMEOUT_S,
        reprobe: bool = False,
        memory_root: Path | None = None,
    ) -> None:
        self._assets_for = assets_for
        self._log_root = log_root
        self._timeout_s = timeout_s
        self._reprobe = reprobe
        self._memory_root = memory_root or probe_memory.memory_dir()
        self._results: OncePerKey[Arch, ProbeResult] = OncePerKey(self._probe)

    def result(self, arch: Arch) -> ProbeResult:
        return self._results.get(arch)

    def _probe(self, arch: Arch) -> ProbeResult:
        static = kvm_static_reason(arch)
        if static:
            return ProbeResult(usable=False, reason=static)
        return probe_kvm_remembered(
            arch,
            self._assets_for(arch),
            log_root=self._log_root,
            timeout_s=self._timeout_s,
            reprobe=self._reprobe,
            memory_root=self._memory_root,
        )


# -- the KVM probe: earliest sign of life, remembered across runs ---------------


def probe_kvm_remembered(
    arch: Arch, assets: GuestAssets, *, log_root: Path, timeout_s: float, reprobe: bool, memory_root: Path
) -> ProbeResult:
    """The remembered result for this QEMU, kernel and /dev/kvm, or a fresh
    probe (always with ``reprobe``), which is then remembered."""
    info = qemu_info(arch)
    if info.path is None:
        return ProbeResult(usable=False, reason=info.missing_reason)
    key = probe_memory.probe_key(arch=arch, qemu_path=info.path, qemu_version=info.version, assets=assets)
    earlier = None if reprobe else probe_memory.recall(memory_root, arch, key)
    if earlier is not None:
        when = datetime.fromtimestamp(earlier.at).strftime("%Y-%m-%d %H:%M")
        return ProbeResult(
            usable=earlier.usable,
            reason=f"{earlier.reason} (probed {when}; --reprobe probes again)",
            seconds=0.0,
            remembered=True,
        )
    result = probe_kvm(arch, assets, log_root=log_root, timeout_s=timeout_s)
    probe_memory.remember(memory_root, arch, key, usable=result.usable, reason=result.reason, seconds=result.seconds)
    return result


def probe_kvm(arch: Arch, assets: GuestAssets, *, log_root: Path, timeout_s: float) -> ProbeResult:
    """Start the guest's kernel under KVM; usable when it prints its first line within ``timeout_s``."""
    life = sign_of_life(
        arch=arch,
        accel=Accel.KVM,
        machine=arch.facts.default_machine,
        kernel=assets.kernel,
        log_dir=log_root / f"kvm-probe-{arch}",
        timeout_s=timeout_s,
    )
    reason = life.reason if life.alive else f"KVM probe guest failed: {life.reason}"
    return ProbeResult(usable=life.alive, reason=reason, seconds=life.seconds)


# -- a whole probe boot (doctor's TCG check) -------------------------------------


def probe_guest(arch: Arch, accel: Accel, assets: GuestAssets, *, log_root: Path, timeout_s: float) -> ProbeResult:
    """Boot the probe guest (the stub guest running ``true``) under ``accel``."""
    info = qemu_info(arch)
    if info.path is None:
        return ProbeResult(usable=False, reason=info.missing_reason)
    from ccvm.qemu.guestrun import run_guest  # late: guestrun imports the launcher stack

    label = str(accel).upper()
    log_dir = log_root / f"{accel}-probe-{arch}"
    started = time.monotonic()
    share = Path(tempfile.mkdtemp(prefix="ccvm-probe-"))
    request = GuestRequest(
        arch=arch,
        accel=accel,
        machine=arch.facts.default_machine,
        memory_mib=256,
        cores=1,
        program=("true",),
        share_dir=share,
    )
    try:
        probe_run = run_guest(request, assets, log_dir=log_dir, timeout_s=timeout_s)
    except GuestError as exc:
        reason = f"{label} probe guest failed: {_qemu_reason(exc, log_dir, timeout_s, accel)}"
        return ProbeResult(usable=False, reason=reason, seconds=time.monotonic() - started)
    finally:
        shutil.rmtree(share, ignore_errors=True)
    if probe_run.status != 0:
        return ProbeResult(
            usable=False, reason=f"{label} probe program exited {probe_run.status}", seconds=probe_run.seconds
        )
    return ProbeResult(
        usable=True, reason=f"a probe guest booted under {label} in {probe_run.seconds:.1f}s", seconds=probe_run.seconds
    )


def _qemu_reason(exc: GuestError, log_dir: Path, timeout_s: float, accel: Accel) -> str:
    """The failure in one line, with QEMU's own last error line when there is one."""
    reason = exc.reason
    try:
        lines = [
            line
            for line in (log_dir / "qemu.log").read_text(errors="replace").splitlines()
            if line.strip() and "waiting for connection" not in line
        ]
    except OSError:
        lines = []
    if isinstance(exc, GuestFailure) and exc.timed_out:
        hint = " (/dev/kvm opens, but the guest hangs)" if accel is Accel.KVM else ""
        return f"no boot within {timeout_s:g}s{hint}"
    return f"{reason}: {lines[-1].strip()}" if lines else reason
