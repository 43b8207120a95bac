"""Options of ``ccvm vm``: flag, then environment, then matrix default.

Every value records where it came from, so ``--help``, the dry-run plan
and the docs can state the precedence and tests can check it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ccvm.errors import UsageError
from ccvm.matrix.axes import MACHINES_FOR_ARCH, Accel, Arch, Machine, host_arch, parse_axis_value
from ccvm.matrix.limits import parse_cores
from ccvm.matrix.model import Matrix
from ccvm.matrix.sizes import parse_mib
from ccvm.qemu.launch import Mode

ENV = {
    "arch": "CCVM_ARCH",
    "accel": "CCVM_ACCEL",
    "machine": "CCVM_MACHINE",
    "memory": "CCVM_MEMORY",
    "cores": "CCVM_CORES",
    "writable_cwd": "CCVM_WRITABLE_CWD",
    "shell": "CCVM_SHELL",
    "debug": "CCVM_DEBUG",
    "config_dir": "CCVM_CONFIG_DIR",
}
FLAG = {
    "arch": "--arch",
    "accel": "--accel",
    "machine": "--machine",
    "memory": "--memory",
    "cores": "--cores",
    "writable_cwd": "--writable-cwd",
    "shell": "--shell",
    "debug": "--ccvm-debug",
    "config_dir": "--config-dir",
}
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}


@dataclass(frozen=True, kw_only=True)
class VmOptions:
    arch: Arch
    accel: Accel
    machine: Machine
    memory_mib: int
    cores: int
    writable_cwd: bool
    mode: Mode
    config_dir: Path
    sources: dict[str, str]  # option -> "flag" | "env" | "default"


def _pick(name: str, flags: argparse.Namespace, env: Mapping[str, str]) -> tuple[object, str] | None:
    value = getattr(flags, name, None)
    if value not in (None, False):
        return value, "flag"
    if ENV[name] in env:
        return env[ENV[name]], "env"
    return None


def _where(name: str, source: str) -> str:
    return FLAG[name] if source == "flag" else ENV[name]


def _axis(name: str, picked: tuple[object, str] | None, default):
    if picked is None:
        return default, "default"
    value, source = picked
    try:
        return parse_axis_value(name, value), source
    except ValueError as exc:
        raise UsageError(f"{_where(name, source)}: {exc}") from None


def _switch(name: str, picked: tuple[object, str] | None) -> tuple[bool, str]:
    if picked is None:
        return False, "default"
    value, source = picked
    if value is True:
        return True, source
    word = str(value).strip().lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS, source
    raise UsageError(f"{_where(name, source)}={value!r}: write 1 or 0")


def _number(name: str, picked, default: int, parse) -> tuple[int, str]:
    if picked is None:
        return default, "default"
    value, source = picked
    try:
        return parse(value), source
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{_where(name, source)}: {exc}") from None


def resolve(flags: argparse.Namespace, env: Mapping[str, str], matrix: Matrix, home: Path) -> VmOptions:
    sources: dict[str, str] = {}
    default_arch = matrix.vm_defaults.arch or host_arch() or Arch.X86_64
    arch, sources["arch"] = _axis("arch", _pick("arch", flags, env), default_arch)
    accel, sources["accel"] = _axis("accel", _pick("accel", flags, env), matrix.vm_defaults.accel)
    machine, sources["machine"] = _axis("machine", _pick("machine", flags, env), arch.facts.default_machine)
    if machine not in MACHINES_FOR_ARCH[arch]:
        fits = ", ".join(sorted(MACHINES_FOR_ARCH[arch]))
        raise UsageError(f"{_where('machine', sources['machine'])}: {machine} does not go with {arch}; use {fits}")
    settings = matrix.cells[0].settings if matrix.cells else None
    memory, sources["memory"] = _number(
        "memory", _pick("memory", flags, env), settings.memory_mib if settings else 512, parse_mib
    )
    cores, sources["cores"] = _number(
        "cores", _pick("cores", flags, env), settings.cores if settings else 1, parse_cores
    )
    writable, sources["writable_cwd"] = _switch("writable_cwd", _pick("writable_cwd", flags, env))
    shell, sources["shell"] = _switch("shell", _pick("shell", flags, env))
    debug, sources["debug"] = _switch("debug", _pick("debug", flags, env))
    config = _pick("config_dir", flags, env)
    if config is not None and not str(config[0]).strip():
        raise UsageError(f"{_where('config_dir', config[1])} is empty: name a directory (or leave it unset)")
    config_dir, sources["config_dir"] = (Path(str(config[0])), config[1]) if config else (home / ".claude", "default")
    mode = Mode.SHELL if shell else Mode.DEBUG if debug else Mode.RUN
    return VmOptions(
        arch=arch,
        accel=accel,
        machine=machine,
        memory_mib=memory,
        cores=cores,
        writable_cwd=writable,
        mode=mode,
        config_dir=config_dir,
        sources=sources,
    )
