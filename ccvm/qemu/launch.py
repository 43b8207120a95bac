"""From a request to a launch: stage the guest's configuration in a private
scratch directory and build the QEMU argv (``ccvm.qemu.argv``).

The guest receives three small shell files through fw_cfg:
``config.sh`` (mode, share, the terminal), ``env.sh`` (the program's
environment) and ``argv.sh`` (the program's argv, each word
single-quoted), so argv is delivered byte for byte and never touches the
kernel command line.

A launch on a terminal (``GuestRequest.terminal``) tells the guest the
host's TERM and window size in ``config.sh``, and gets a fourth virtio
port, ``ccvm.winsize``, on which ccvm sends every later size
(``size ROWS COLS`` lines) for the guest's relay to set on its terminal.
"""

from __future__ import annotations

import enum
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.errors import UsageError
from ccvm.guest.assets import GuestAssets
from ccvm.matrix.axes import Accel, Arch, Machine
from ccvm.qemu.argv import OUTPUT_PORT, WINSIZE_PORT, Channel, LaunchSpec

FW_CFG_PREFIX = "opt/ccvm/"


class Mode(enum.StrEnum):
    RUN = "run"  # run the program, report its exit status
    SHELL = "shell"  # an interactive guest shell on the terminal
    DEBUG = "debug"  # run, streaming the kernel console; keep the scratch directory


@dataclass(frozen=True, kw_only=True)
class Terminal:
    """The host terminal a launch runs on: its TERM ("" when unset) and its
    window size (0 when the terminal does not know it)."""

    term: str
    rows: int
    cols: int


@dataclass(frozen=True, kw_only=True)
class HomeFile:
    """A host file copied into the guest's home directory (``relative`` to it)."""

    relative: str  # e.g. ".claude/settings.json"
    source: Path


@dataclass(frozen=True, kw_only=True)
class StagedFile:
    guest_path: str
    host_path: Path
    size: int
    mode: int


@dataclass(frozen=True, kw_only=True)
class GuestRequest:
    arch: Arch
    accel: Accel
    machine: Machine
    memory_mib: int
    cores: int
    program: tuple[str, ...]  # the program and its arguments, verbatim
    share_dir: Path
    share_writable: bool = False
    mode: Mode = Mode.RUN
    env: dict[str, str] = field(default_factory=dict)
    home_files: tuple[HomeFile, ...] = ()
    terminal: Terminal | None = None  # the program runs on the host's terminal (a shell is always on one)


def _quote_word(word: str) -> str:
    # POSIX single quotes keep every byte but the quote itself, which is
    # closed, escaped and reopened.  shlex.quote leaves "safe" words bare.
    return "'" + word.replace("'", "'\\''") + "'"


def argv_script(program: tuple[str, ...]) -> str:
    return "set --" + "".join(f" {_quote_word(word)}" for word in program) + "\n"


def env_script(env: dict[str, str]) -> str:
    lines = []
    for key, value in sorted(env.items()):
        if not key.isidentifier():
            raise ValueError(f"environment name {key!r} is not a shell identifier")
        lines.append(f"export {key}={_quote_word(value)}\n")
    return "".join(lines)


def config_script(request: GuestRequest, guest_cwd: str) -> str:
    share = "writable" if request.share_writable else "overlay"
    mode = "shell" if request.mode is Mode.SHELL else "run"
    text = f"CCVM_MODE={mode}\nCCVM_SHARE={share}\nCCVM_CWD={shlex.quote(guest_cwd)}\n"
    terminal = request.terminal
    if terminal is not None:
        text += f"CCVM_TTY=1\nCCVM_TERM={shlex.quote(terminal.term)}\n"
        text += f"CCVM_ROWS={terminal.rows}\nCCVM_COLS={terminal.cols}\nCCVM_WINSIZE_PORT={WINSIZE_PORT}\n"
    else:
        text += f"CCVM_OUTPUT_PORT={OUTPUT_PORT}\n"
    return text


def _write_private(path: Path, data: bytes) -> Path:
    """Create a file only its owner can read (0600), whatever the umask."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)
    return path


def staged_files(scratch: Path) -> list[StagedFile]:
    """What ``stage`` wrote, for the dry-run plan (sizes and modes, no content)."""
    found = []
    for path in sorted(p for p in scratch.rglob("*") if p.is_file() and not p.is_socket()):
        relative = path.relative_to(scratch).as_posix()
        guest = (
            "~/" + relative.removeprefix("home/")
            if relative.startswith("home/")
            else f"fw_cfg:{FW_CFG_PREFIX}{relative}"
        )
        info = path.stat()
        found.append(StagedFile(guest_path=guest, host_path=path, size=info.st_size, mode=info.st_mode & 0o7777))
    return found


GUEST_RESERVED = ("/ccvm", "/proc", "/sys", "/dev", "/bin", "/lib", "/etc/ccvm")


def check_share_path(guest_cwd: str) -> None:
    """The share is mounted in the guest at the host path; it must not cover
    the guest's own system directories or ccvm's guest-side state."""
    covers = guest_cwd in ("/", "/etc") or any(guest_cwd == r or guest_cwd.startswith(r + "/") for r in GUEST_RESERVED)
    if covers:
        raise UsageError(
            f"the working directory {guest_cwd} cannot be shared: the guest needs that path for itself; "
            "run from a project directory"
        )


def stage(request: GuestRequest, assets: GuestAssets, scratch: Path) -> LaunchSpec:
    """Write the fw_cfg files into ``scratch`` (mode 0700) and return the spec."""
    os.chmod(scratch, 0o700)
    guest_cwd = str(request.share_dir.resolve())
    check_share_path(guest_cwd)
    files = {
        "config.sh": config_script(request, guest_cwd).encode("utf-8", "surrogateescape"),
        "env.sh": env_script(request.env).encode("utf-8", "surrogateescape"),
        "argv.sh": argv_script(request.program).encode("utf-8", "surrogateescape"),
    }
    for home_file in request.home_files:
        files["home/" + home_file.relative] = home_file.source.read_bytes()
    fw_cfg = tuple((FW_CFG_PREFIX + name, _write_private(scratch / name, data)) for name, data in files.items())
    terminal = request.terminal is not None
    if terminal:
        (scratch / "logs").mkdir(mode=0o700, exist_ok=True)  # the kernel console's file
    return LaunchSpec(
        arch=request.arch,
        accel=request.accel,
        machine=request.machine,
        memory_mib=request.memory_mib,
        cores=request.cores,
        kernel=assets.kernel,
        initrd=assets.initrd,
        serial=Channel.file(scratch / "logs" / "console.log") if terminal else Channel.socket(scratch / "serial.sock"),
        agent=Channel.socket(scratch / "agent.sock"),
        control=Channel.socket(scratch / "control.sock"),
        winsize=Channel.socket(scratch / "winsize.sock") if terminal else None,
        share_dir=request.share_dir.resolve(),
        share_writable=request.share_writable,
        fw_cfg=fw_cfg,
        quiet=request.mode is not Mode.DEBUG,
    )
