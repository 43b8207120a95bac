"""Run one program in one guest: the launcher core every command shares
(``ccvm vm``, the boot matrix, the KVM probe)."""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ccvm.guest.assets import GuestAssets
from ccvm.qemu.env import qemu_environment
from ccvm.qemu.launch import GuestRequest, Mode, stage
from ccvm.qemu.vm import VM

_FACT = re.compile(r"^CCVM:FACT ([^=\s]+)=(.*?)\r?$", re.M)


@dataclass(frozen=True, kw_only=True)
class GuestRun:
    status: int
    facts: dict[str, str]
    agent_text: str
    qemu_argv: tuple[str, ...]
    seconds: float  # launch to the program's exit line


def parse_facts(text: str) -> dict[str, str]:
    return {key: value for key, value in _FACT.findall(text)}


def run_guest(
    request: GuestRequest,
    assets: GuestAssets,
    *,
    log_dir: Path,
    timeout_s: float,
    scratch: Path | None = None,
    mirror_serial: TextIO | None = None,
    mirror_agent: TextIO | None = None,
    cancelled: threading.Event | None = None,
) -> GuestRun:
    """Boot, run the program, return its status; raises a GuestError
    (GuestFailure or LaunchError, from ccvm.errors), a GuestFailure too when
    ``cancelled`` is set meanwhile.

    The scratch directory (staged files, sockets) is removed at the end
    unless the request is in debug mode.
    """
    scratch = scratch or Path(tempfile.mkdtemp(prefix="ccvm-"))
    try:
        spec = stage(request, assets, scratch)
        with VM(
            spec,
            log_dir=log_dir,
            env=qemu_environment(),
            mirror_serial=mirror_serial,
            mirror_agent=mirror_agent,
            cancelled=cancelled,
        ) as vm:
            status, text = vm.wait_exit_status(deadline=time.monotonic() + timeout_s)
            seconds = time.monotonic() - vm.started_at
        return GuestRun(
            status=status, facts=parse_facts(text), agent_text=text, qemu_argv=tuple(vm.argv), seconds=seconds
        )
    finally:
        if request.mode is not Mode.DEBUG:
            shutil.rmtree(scratch, ignore_errors=True)
