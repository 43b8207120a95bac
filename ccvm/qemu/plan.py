"""The launch plan: what ``CCVM_DRYRUN=1 ccvm vm …`` prints as JSON.

It is the contract any wrapper can follow (docs/src/launcher.md documents
every field).  It names files and their sizes and modes, never contents.
"""

from __future__ import annotations

from pathlib import Path

from ccvm.qemu.argv import LaunchSpec, kernel_cmdline, qemu_argv
from ccvm.qemu.launch import GuestRequest, Mode, staged_files

SCHEMA = "ccvm-launch-plan/1"


def launch_plan(
    *, request: GuestRequest, spec: LaunchSpec, scratch: Path, sources: dict[str, str], qemu_env: dict[str, str]
) -> dict:
    return {
        "schema": SCHEMA,
        "mode": str(request.mode),
        "arch": str(request.arch),
        "accel": str(request.accel),
        "machine": str(request.machine),
        "memory_mib": request.memory_mib,
        "cores": request.cores,
        "sources": dict(sorted(sources.items())),
        "qemu_argv": qemu_argv(spec),
        "qemu_env": qemu_env,
        "kernel_cmdline": kernel_cmdline(spec),
        "guest_argv": list(request.program),
        "terminal": None
        if request.terminal is None
        else {"term": request.terminal.term, "rows": request.terminal.rows, "cols": request.terminal.cols},
        "share": {
            "mode": "writable" if request.share_writable else "overlay",
            "host_path": str(spec.share_dir),
            "guest_path": str(spec.share_dir),
        },
        "scratch": {"path": str(scratch), "kept": request.mode is Mode.DEBUG},
        "staged": [
            {"guest_path": f.guest_path, "host_path": str(f.host_path), "size": f.size, "mode": f"{f.mode:04o}"}
            for f in staged_files(scratch)
        ],
    }
