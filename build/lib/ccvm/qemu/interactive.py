"""The interactive guest shell (``ccvm vm --shell``): QEMU takes the
terminal; the guest's agent channel is the terminal itself."""

from __future__ import annotations

from pathlib import Path

from ccvm import processes
from ccvm.guest.assets import GuestAssets
from ccvm.qemu.argv import qemu_argv
from ccvm.qemu.env import qemu_environment
from ccvm.qemu.launch import GuestRequest, stage


def run_shell(request: GuestRequest, assets: GuestAssets, scratch: Path) -> int:
    """Run until the person leaves the shell; returns QEMU's exit status.

    This is the one wait without a timeout: a person is at the keyboard.
    The guest powers off when the shell exits.
    """
    argv = qemu_argv(stage(request, assets, scratch))
    proc = processes.spawn(argv, own_session=False, env=qemu_environment())
    try:
        return proc.wait()
    finally:
        if proc.poll() is None:
            processes.stop(proc)
        processes.forget(proc)
