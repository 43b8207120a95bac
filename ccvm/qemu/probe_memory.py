"""The accelerator probe's result, remembered across runs.

A result stands for as long as nothing that could change it has changed:
the QEMU binary (path, version, mtime), the kernel (its sha256 and the
file booted) and the /dev/kvm device node (st_rdev, st_ino, st_ctime:
a reloaded module or a changed permission gives a new node or ctime).
One JSON file per arch under the cache, written atomically; a file that
does not parse or names another key is simply not used.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ccvm.files import cache_root, write_atomic
from ccvm.guest.assets import GuestAssets
from ccvm.matrix.axes import Arch

MEMORY_FORMAT = 1  # bump when the probe method changes what a result means
KVM_DEVICE = "/dev/kvm"


@dataclass(frozen=True, kw_only=True)
class Remembered:
    usable: bool
    reason: str
    seconds: float
    at: float  # time.time() when it was probed


def memory_dir() -> Path:
    return cache_root() / "probe"


def probe_key(*, arch: Arch, qemu_path: str, qemu_version: str, assets: GuestAssets) -> dict[str, str]:
    """Everything that could change the probe's answer, as strings."""
    qemu = os.stat(qemu_path)
    kvm = os.stat(KVM_DEVICE)
    return {
        "format": str(MEMORY_FORMAT),
        "arch": str(arch),
        "qemu_path": os.path.realpath(qemu_path),
        "qemu_version": qemu_version,
        "qemu_mtime_ns": str(qemu.st_mtime_ns),
        "kernel_sha256": assets.kernel_source.sha256,
        "kernel_booted": str(assets.kernel),
        "kvm_rdev": str(kvm.st_rdev),
        "kvm_ino": str(kvm.st_ino),
        "kvm_ctime_ns": str(kvm.st_ctime_ns),
    }


def _path(root: Path, arch: Arch) -> Path:
    return root / f"kvm-{arch}.json"


def recall(root: Path, arch: Arch, key: dict[str, str]) -> Remembered | None:
    try:
        record = json.loads(_path(root, arch).read_text())
        if record.get("key") != key:
            return None
        return Remembered(**record["result"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def remember(root: Path, arch: Arch, key: dict[str, str], *, usable: bool, reason: str, seconds: float) -> None:
    result = Remembered(usable=usable, reason=reason, seconds=seconds, at=time.time())
    with contextlib.suppress(OSError):  # remembering is an optimisation; the probe's answer stands either way
        write_atomic(_path(root, arch), json.dumps({"key": key, "result": result.__dict__}, indent=1).encode())
