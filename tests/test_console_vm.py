"""The console's wait helper and the VM's start and shutdown, in-process,
without QEMU.

The console is driven over socketpairs: the test writes what the guest
would.  The VM is driven against a stand-in for QEMU (a small Python
program named qemu-system-x86_64, first on PATH): real QEMU cannot be made
to hang, ignore SIGTERM or die during start-up on demand.  It listens on
the chardev sockets of the real argv, as QEMU does, and behaves as
FAKE_QEMU_MODE says.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ccvm import processes
from ccvm.errors import GuestError, GuestFailure, LaunchError
from ccvm.matrix.axes import Accel, Arch, Machine
from ccvm.qemu import vm as vm_module
from ccvm.qemu.argv import Channel, LaunchSpec
from ccvm.qemu.console import Console
from ccvm.qemu.vm import VM

READY = re.compile(r"^CCVM:READY\r?$", re.M)


# -- the console over socketpairs ---------------------------------------------------------------------------------


class Guest:
    """The guest's ends of the three channels."""

    def __init__(self, tmp_path: Path, *, alive: bool = True) -> None:
        self.serial, serial = socket.socketpair()
        self.agent, agent = socket.socketpair()
        self.control, control = socket.socketpair()
        self.alive = alive
        self.console = Console(
            serial=serial, agent=agent, control=control, log_dir=tmp_path, qemu_alive=lambda: self.alive
        )

    def close(self) -> None:
        self.console.close()
        for end in (self.serial, self.agent, self.control):
            end.close()


@pytest.fixture
def guest(tmp_path):
    g = Guest(tmp_path)
    yield g
    g.close()


def test_wait_for_returns_the_match_from_the_control_channel(guest):
    guest.control.sendall(b"booting\r\nCCVM:READY\r\n")
    match = guest.console.wait_for(READY, deadline=time.monotonic() + 60, what="ready")
    assert match.group(0).strip() == "CCVM:READY"


def test_a_timeout_reports_the_drained_tails_of_every_channel(guest):
    guest.serial.sendall(b"Linux version 6.1\r\nlast kernel line")
    guest.agent.sendall(b"program said hi\n")
    guest.control.sendall(b"CCVM:INIT channel\n")
    started = time.monotonic()
    with pytest.raises(GuestFailure) as caught:
        guest.console.wait_for(READY, deadline=started + 0.6, what="the ready line")
    assert time.monotonic() - started < 30  # a wait past its deadline would hang: nothing more arrives
    failure = caught.value
    assert isinstance(failure, GuestError) and failure.reason == "timed out waiting for the ready line"
    assert "Linux version 6.1\nlast kernel line" in failure.tail  # an unterminated last line is kept too
    assert "program said hi" in failure.tail
    assert "--- control channel ---\nCCVM:INIT channel" in failure.tail


def test_a_kernel_panic_fails_at_once_with_its_line(guest):
    guest.serial.sendall(b"[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n")
    started = time.monotonic()
    with pytest.raises(GuestFailure) as caught:
        guest.console.wait_for(READY, deadline=started + 120, what="ready")
    assert time.monotonic() - started < 60  # not the deadline: halfway to it
    assert caught.value.reason == "kernel console: Kernel panic - not syncing: VFS: Unable to mount root fs"
    assert caught.value.line_at is not None and caught.value.line_at >= started


def test_init_failing_on_the_control_channel(guest):
    guest.control.sendall(b"CCVM:FAIL cannot mount the share\n")
    with pytest.raises(GuestFailure, match="guest init failed: cannot mount the share"):
        guest.console.wait_for(READY, deadline=time.monotonic() + 60, what="ready")


def test_the_program_channel_cannot_fake_a_protocol_line(guest):
    guest.agent.sendall(b"CCVM:READY\nCCVM:FAIL fake\n")
    with pytest.raises(GuestFailure, match="timed out waiting for ready"):
        guest.console.wait_for(READY, deadline=time.monotonic() + 0.6, what="ready")
    assert "CCVM:READY" in guest.console.program_output(timeout_s=0.1)


def test_qemu_going_away_is_reported_as_such(tmp_path):
    g = Guest(tmp_path, alive=False)
    try:
        g.control.close()
        with pytest.raises(GuestFailure) as caught:
            g.console.wait_for(READY, deadline=time.monotonic() + 60, what="the ready line")
        assert caught.value.reason == "QEMU exited before the ready line"
    finally:
        g.close()


# -- the VM against a stand-in QEMU ---------------------------------------------------------------------------------

FAKE_QEMU = r"""
import os, re, signal, socket, sys, time
mode = os.environ["FAKE_QEMU_MODE"]
if mode == "die":
    print("qemu-system-x86_64: -kernel /nope: could not open kernel", file=sys.stderr)
    sys.exit(1)
if mode.endswith("ignore-term"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
paths = {}
for i, word in enumerate(sys.argv):
    if word == "-chardev" and sys.argv[i + 1].startswith("socket,"):
        opts = dict(o.split("=", 1) for o in sys.argv[i + 1].split(",")[1:])
        paths[opts["id"]] = opts["path"]
conns = {}
for ident, path in paths.items():
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    conns[ident] = server
conns = {ident: server.accept()[0] for ident, server in conns.items()}
if mode.startswith("exit"):
    conns["ctl0"].sendall(b"CCVM:INIT channel\r\nCCVM:EXIT 3\r\n")
    conns["agent0"].sendall(b"program output\n")
    conns["agent0"].close()
    time.sleep(float(os.environ.get("FAKE_QEMU_POWEROFF_S", "0")))
    sys.exit(0)
while True:
    time.sleep(1)
"""


@pytest.fixture
def fake_qemu(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "qemu-system-x86_64"
    script.write_text(f"#!{sys.executable}\n{FAKE_QEMU}")
    script.chmod(0o755)
    return bin_dir


@pytest.fixture
def sockets():
    where = Path(tempfile.mkdtemp(prefix="ccvm-t-"))  # short: a unix socket path has ~100 bytes
    yield where
    shutil.rmtree(where, ignore_errors=True)


def make_vm(tmp_path: Path, fake_qemu: Path, sockets: Path, mode: str, **env: str) -> VM:
    spec = LaunchSpec(
        arch=Arch.X86_64,
        accel=Accel.TCG,
        machine=Machine.Q35,
        memory_mib=256,
        cores=1,
        kernel=tmp_path / "vmlinuz",
        initrd=tmp_path / "initrd",
        serial=Channel.socket(sockets / "serial.sock"),
        agent=Channel.socket(sockets / "agent.sock"),
        control=Channel.socket(sockets / "control.sock"),
        share_dir=tmp_path,
        share_writable=False,
        fw_cfg=(),
    )
    full_env = {"PATH": f"{fake_qemu}{os.pathsep}{os.environ['PATH']}", "FAKE_QEMU_MODE": mode, **env}
    return VM(spec, log_dir=tmp_path / "logs", env=full_env)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_clean_exit_is_waited_for_not_killed(tmp_path, fake_qemu, sockets, monkeypatch):
    """Soft first: after the exit line the guest powers off by itself, within the grace (made long here, so
    that only a stop without a wait fails, not a loaded host slowing the stand-in's 1 s power-off)."""
    monkeypatch.setattr(vm_module, "POWEROFF_GRACE_S", 60.0)
    with make_vm(tmp_path, fake_qemu, sockets, "exit", FAKE_QEMU_POWEROFF_S="1") as vm:
        status, text = vm.wait_exit_status(deadline=time.monotonic() + 120)
        proc = vm.proc
    assert (status, text) == (3, "program output\n")
    assert proc.returncode == 0  # its own exit, not a signal
    assert proc not in processes._live and vm.console is None


def test_a_guest_that_does_not_power_off_is_stopped_after_the_grace(tmp_path, fake_qemu, sockets, monkeypatch):
    monkeypatch.setattr(vm_module, "POWEROFF_GRACE_S", 0.5)
    with make_vm(tmp_path, fake_qemu, sockets, "exit", FAKE_QEMU_POWEROFF_S="120") as vm:
        vm.wait_exit_status(deadline=time.monotonic() + 120)
        started = time.monotonic()
    # Waiting for the guest instead of the grace would take the stand-in's 120 s: halfway to that.
    assert vm.proc.returncode == -signal.SIGTERM and time.monotonic() - started < 60


def test_a_hung_guest_is_terminated_when_the_context_is_left(tmp_path, fake_qemu, sockets):
    vm = make_vm(tmp_path, fake_qemu, sockets, "hang")
    with pytest.raises(GuestFailure, match="timed out waiting for the guest init"), vm:
        vm.wait_exit_status(deadline=time.monotonic() + 0.5)
    assert vm.proc.returncode == -signal.SIGTERM and gone(vm.proc.pid)
    assert vm.console is None and vm._qemu_log is None


def test_a_qemu_ignoring_sigterm_is_killed(tmp_path, fake_qemu, sockets):
    vm = make_vm(tmp_path, fake_qemu, sockets, "hang-ignore-term")
    with vm:
        pass
    assert vm.proc.returncode == -signal.SIGKILL and gone(vm.proc.pid)


def test_every_resource_is_closed_even_when_one_close_fails(tmp_path, fake_qemu, sockets):
    vm = make_vm(tmp_path, fake_qemu, sockets, "hang")
    vm.start()
    console = vm.console
    real_close = console.close

    def broken_close(drain_s: float = 0.0) -> None:
        real_close(drain_s)
        raise RuntimeError("console close failed")

    console.close = broken_close
    with pytest.raises(RuntimeError, match="console close failed"):
        vm.close()
    assert vm.proc.returncode == -signal.SIGTERM  # QEMU was stopped first
    assert vm.console is None and vm._qemu_log is None  # and the log closed after the console failed


def test_qemu_dying_at_start_up_is_a_launch_error_with_its_argv_and_output(tmp_path, fake_qemu, sockets):
    vm = make_vm(tmp_path, fake_qemu, sockets, "die")
    with pytest.raises(LaunchError) as caught, vm:
        pass
    failure = caught.value
    assert failure.reason == "QEMU exited during start-up"
    assert failure.argv == tuple(vm.argv) and failure.argv[0] == "qemu-system-x86_64"
    assert failure.output == "qemu-system-x86_64: -kernel /nope: could not open kernel"
    assert str(failure).splitlines()[1].startswith("command: qemu-system-x86_64 -M q35 ")
    assert failure.details == str(failure)
    assert vm._qemu_log is None and vm.proc.returncode == 1


def test_a_qemu_that_cannot_be_started_has_no_output(tmp_path, sockets):
    vm = make_vm(tmp_path, tmp_path / "no-bin", sockets, "die")
    vm.env["PATH"] = str(tmp_path / "no-bin")
    with pytest.raises(LaunchError) as caught:
        vm.start()
    vm.close()
    assert caught.value.reason.startswith("cannot start qemu-system-x86_64: ")
    assert caught.value.output is None and str(caught.value) == caught.value.reason
