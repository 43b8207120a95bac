import dataclasses
from pathlib import Path

import pytest
from clirun import ROOT

from ccvm.matrix.axes import Accel, Arch, Machine
from ccvm.qemu.argv import CONTROL_PORT, Channel, LaunchSpec, kernel_cmdline, qemu_argv
from ccvm.qemu.launch import GuestRequest, Terminal, config_script


def spec(**changes):
    base = dict(
        arch=Arch.X86_64,
        accel=Accel.TCG,
        machine=Machine.Q35,
        memory_mib=512,
        cores=2,
        kernel=Path("/k/vmlinuz"),
        initrd=Path("/k/initrd"),
        serial=Channel.socket(Path("/s/serial.sock")),
        agent=Channel.socket(Path("/s/agent.sock")),
        control=Channel.socket(Path("/s/control.sock")),
        share_dir=Path("/work/dir"),
        share_writable=False,
        fw_cfg=(("opt/ccvm/argv.sh", Path("/s/argv.sh")),),
    )
    base.update(changes)
    return LaunchSpec(**base)


def option(argv, flag):
    return [argv[i + 1] for i, word in enumerate(argv) if word == flag]


def test_x86_64_tcg_q35():
    argv = qemu_argv(spec())
    assert argv[:3] == ["qemu-system-x86_64", "-M", "q35"]
    assert option(argv, "-accel") == ["tcg,thread=multi"]
    assert option(argv, "-cpu") == ["max"]
    quick_start = "cryptomgr.notests audit=0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"
    quick_start += " tsc=reliable no_timer_check noreplace-smp"
    assert option(argv, "-append") == [f"console=ttyS0 panic=-1 {quick_start} quiet"]
    for flag in ("-nodefaults", "-no-user-config", "-no-reboot"):
        assert flag in argv


def test_aarch64_tcg_virt_uses_the_measured_fastest_cpu_and_pl011():
    argv = qemu_argv(spec(arch=Arch.AARCH64, machine=Machine.VIRT))
    assert argv[:3] == ["qemu-system-aarch64", "-M", "virt"]
    assert option(argv, "-cpu") == ["cortex-a57"]
    assert "console=ttyAMA0" in option(argv, "-append")[0]


def test_kvm_uses_host_cpu():
    argv = qemu_argv(spec(accel=Accel.KVM))
    assert option(argv, "-accel") == ["kvm"] and option(argv, "-cpu") == ["host"]


@pytest.mark.parametrize(("memory", "cores"), [(256, 1), (4096, 4)])
def test_memory_and_cores_are_run_time_arguments(memory, cores):
    argv = qemu_argv(spec(memory_mib=memory, cores=cores))
    assert option(argv, "-m") == [f"{memory}M"] and option(argv, "-smp") == [str(cores)]


def test_share_is_read_only_unless_writable():
    assert option(qemu_argv(spec()), "-fsdev")[0].endswith(",readonly=on")
    assert "readonly" not in option(qemu_argv(spec(share_writable=True)), "-fsdev")[0]


def test_commas_in_paths_are_escaped():
    argv = qemu_argv(spec(share_dir=Path("/a,b")))
    assert "path=/a,,b," in option(argv, "-fsdev")[0]


def test_argv_goes_through_fw_cfg_files_never_the_command_line():
    argv = qemu_argv(spec())
    assert option(argv, "-fw_cfg") == ["name=opt/ccvm/argv.sh,file=/s/argv.sh"]
    assert not any("string=" in word for word in argv)


def test_sockets_wait_for_the_runner_so_no_output_is_lost():
    argv = qemu_argv(spec())
    chardevs = option(argv, "-chardev")
    assert all("server=on,wait=on" in c for c in chardevs)


def test_output_and_protocol_go_on_named_ports_that_wait_for_a_slow_host():
    """QEMU drops a virtio console's bytes when its socket is full and throttles a port: only a
    terminal launch's program channel is a console (its tty, hvc0)."""
    devices = option(qemu_argv(spec()), "-device")
    assert "virtserialport,bus=vser0.0,chardev=agent0,name=ccvm.output" in devices
    assert "virtserialport,bus=vser0.0,chardev=ctl0,name=ccvm.control" in devices
    assert not any(device.startswith("virtconsole") for device in devices)
    init = (ROOT / "ccvm" / "guest" / "init.sh").read_text()
    assert f"port_named {CONTROL_PORT})" in init  # the guest looks for the port by the name QEMU gives it


def test_a_terminal_launch_gets_the_window_size_port_and_a_console_file():
    argv = qemu_argv(
        spec(serial=Channel.file(Path("/s/logs/console.log")), winsize=Channel.socket(Path("/s/winsize.sock")))
    )
    assert option(argv, "-chardev") == [
        "file,id=serial0,path=/s/logs/console.log",
        "socket,id=agent0,path=/s/agent.sock,server=on,wait=on",
        "socket,id=ctl0,path=/s/control.sock,server=on,wait=on",
        "socket,id=winsize0,path=/s/winsize.sock,server=on,wait=on",
    ]
    devices = option(argv, "-device")
    port = "virtserialport,bus=vser0.0,chardev=winsize0,name=ccvm.winsize"
    assert port in devices
    assert [d for d in devices if d.startswith("virtconsole")] == ["virtconsole,bus=vser0.0,chardev=agent0"]  # hvc0
    assert "virtserialport,bus=vser0.0,chardev=ctl0,name=ccvm.control" in devices
    assert not any("winsize" in word for word in qemu_argv(spec()))  # only a terminal launch has it


def test_terminal_config_tells_the_guest_term_and_size(tmp_path):
    request = GuestRequest(
        arch=Arch.X86_64,
        accel=Accel.TCG,
        machine=Machine.Q35,
        memory_mib=512,
        cores=1,
        program=("sh",),
        share_dir=tmp_path,
        terminal=Terminal(term="xterm-256color; rm -rf /", rows=30, cols=100),
    )
    text = config_script(request, str(tmp_path))
    assert "CCVM_TTY=1\n" in text and "CCVM_ROWS=30\nCCVM_COLS=100\n" in text
    assert "CCVM_TERM='xterm-256color; rm -rf /'\n" in text  # quoted for the guest's sh
    assert "CCVM_WINSIZE_PORT=ccvm.winsize\n" in text
    assert "CCVM_OUTPUT_PORT" not in text  # on a terminal, the program's channel is hvc0, its tty
    plain = config_script(dataclasses.replace(request, terminal=None), str(tmp_path))
    assert "CCVM_TTY" not in plain and "CCVM_OUTPUT_PORT=ccvm.output\n" in plain


def test_protocol_lines_have_a_channel_of_their_own():
    chardevs = option(qemu_argv(spec()), "-chardev")
    assert "socket,id=agent0,path=/s/agent.sock,server=on,wait=on" in chardevs
    assert "socket,id=ctl0,path=/s/control.sock,server=on,wait=on" in chardevs


def test_quiet_is_dropped_for_debug():
    assert "quiet" not in kernel_cmdline(spec(quiet=False))
