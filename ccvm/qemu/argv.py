"""QEMU argv for one guest, built in one place.

x86_64 boots ``qemu-system-x86_64 -M q35`` with the kernel console on
ttyS0; aarch64 boots ``qemu-system-aarch64 -M virt`` with it on ttyAMA0.
tcg is multi-threaded TCG with the arch's ``tcg_cpu`` (ccvm.matrix.axes:
``max`` on x86_64, ``cortex-a57`` on aarch64, an ARMv8.0 core with no
pointer authentication or other late extensions to emulate, which boots the
stub guest faster than ``max,pauth-impdef=on``, see docs/src/performance.md);
kvm is ``-cpu host``.
Guest configuration travels as fw_cfg *files*, so nothing of it appears on
the QEMU command line or the kernel command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccvm.matrix.axes import Accel, Arch, Machine

SHARE_TAG = "ccvm-cwd"
WINSIZE_PORT = "ccvm.winsize"  # the virtio port that carries the window size to the guest (terminal launches)
# Named virtio ports, not consoles: QEMU throttles a port whose socket is full (the guest's write
# waits), where it drops a console's bytes.  Only a terminal launch's program channel must be a
# console (hvc0, a tty); init falls back to hvc0/hvc1 for a launcher that gives two consoles.
CONTROL_PORT = "ccvm.control"  # init's protocol lines
OUTPUT_PORT = "ccvm.output"  # the program's output, when it is not on a terminal


def opt_value(value: object) -> str:
    """A value inside a QEMU -opt list: commas are doubled."""
    return str(value).replace(",", ",,")


def qemu_binary(arch: Arch) -> str:
    return arch.facts.qemu_binary


def kernel_console(arch: Arch) -> str:
    return arch.facts.kernel_console


@dataclass(frozen=True, kw_only=True)
class Channel:
    """Where a character device goes: a unix socket QEMU listens on (and
    waits for, so no output is lost), a file, the terminal, or nowhere."""

    kind: str  # "socket" | "file" | "stdio" | "null"
    path: Path | None = None

    @classmethod
    def socket(cls, path: Path) -> Channel:
        return cls(kind="socket", path=path)

    @classmethod
    def file(cls, path: Path) -> Channel:
        return cls(kind="file", path=path)

    def chardev(self, ident: str) -> str:
        if self.kind == "socket":
            return f"socket,id={ident},path={opt_value(self.path)},server=on,wait=on"
        if self.kind == "file":
            return f"file,id={ident},path={opt_value(self.path)}"
        if self.kind == "stdio":
            return f"stdio,id={ident},signal=off"
        return f"null,id={ident}"


@dataclass(frozen=True, kw_only=True)
class LaunchSpec:
    arch: Arch
    accel: Accel
    machine: Machine
    memory_mib: int
    cores: int
    kernel: Path
    initrd: Path
    serial: Channel
    agent: Channel  # the program's output: port OUTPUT_PORT, or hvc0 on a terminal
    control: Channel  # init's protocol lines (INIT/FAIL/EXIT): port CONTROL_PORT, never the program's
    winsize: Channel | None = None  # on a terminal: the window size, host to guest (a virtio port)
    share_dir: Path
    share_writable: bool
    fw_cfg: tuple[tuple[str, Path], ...]
    quiet: bool = True


def kernel_cmdline(spec: LaunchSpec) -> str:
    words = [f"console={kernel_console(spec.arch)}", "panic=-1", *spec.arch.facts.quick_start]
    if spec.quiet:
        words.append("quiet")
    return " ".join(words)


def _accel_args(spec: LaunchSpec) -> list[str]:
    if spec.accel is Accel.KVM:
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi", "-cpu", spec.arch.facts.tcg_cpu]


def _share_args(spec: LaunchSpec) -> list[str]:
    fsdev = f"local,id=cwd,path={opt_value(spec.share_dir)},security_model=none"
    if not spec.share_writable:
        fsdev += ",readonly=on"
    return ["-fsdev", fsdev, "-device", f"virtio-9p-pci,fsdev=cwd,mount_tag={SHARE_TAG}"]


def qemu_argv(spec: LaunchSpec) -> list[str]:
    argv = [qemu_binary(spec.arch), "-M", str(spec.machine)]
    argv += _accel_args(spec)
    argv += ["-smp", str(spec.cores), "-m", f"{spec.memory_mib}M"]
    argv += ["-nodefaults", "-no-user-config", "-no-reboot", "-display", "none"]
    argv += ["-kernel", str(spec.kernel), "-initrd", str(spec.initrd), "-append", kernel_cmdline(spec)]
    argv += ["-chardev", spec.serial.chardev("serial0"), "-serial", "chardev:serial0"]
    argv += ["-device", "virtio-serial-pci,id=vser0"]
    if spec.winsize is not None:  # a terminal launch: the program's channel is its tty, hvc0
        program = "virtconsole,bus=vser0.0,chardev=agent0"
    else:
        program = f"virtserialport,bus=vser0.0,chardev=agent0,name={OUTPUT_PORT}"
    argv += ["-chardev", spec.agent.chardev("agent0"), "-device", program]
    argv += ["-chardev", spec.control.chardev("ctl0")]
    argv += ["-device", f"virtserialport,bus=vser0.0,chardev=ctl0,name={CONTROL_PORT}"]
    if spec.winsize is not None:
        argv += ["-chardev", spec.winsize.chardev("winsize0")]
        argv += ["-device", f"virtserialport,bus=vser0.0,chardev=winsize0,name={WINSIZE_PORT}"]
    argv += _share_args(spec)
    for name, path in spec.fw_cfg:
        argv += ["-fw_cfg", f"name={name},file={opt_value(path)}"]
    return argv


def sign_of_life_argv(*, arch: Arch, accel: Accel, machine: Machine, kernel: Path) -> list[str]:
    """A guest that only has to print the kernel's first console line: no
    initrd, no devices, the serial port on QEMU's standard output."""
    accel_args = (
        ["-accel", "kvm", "-cpu", "host"] if accel is Accel.KVM else ["-accel", "tcg", "-cpu", arch.facts.tcg_cpu]
    )
    cmdline = f"console={kernel_console(arch)} {arch.facts.early_console} panic=-1"
    return [
        qemu_binary(arch),
        "-M",
        str(machine),
        *accel_args,
        "-smp",
        "1",
        "-m",
        "256M",
        *("-nodefaults", "-no-user-config", "-no-reboot", "-display", "none"),
        *("-kernel", str(kernel), "-append", cmdline),
        *("-serial", "stdio"),
    ]
