"""ccvm doctor: what this host can do."""

from __future__ import annotations

import argparse
import shutil

from ccvm.axes import Arch, host_arch
from ccvm.cache import cache_root
from ccvm.commands.common import add_asset_options, asset_store, matrix_from
from ccvm.hostcaps import KvmProbe, qemu_info
from ccvm.processes import run as run_command

TOOLS = ("nix", "nixfmt", "shfmt", "shellcheck", "ruff", "mdbook", "mdbook-linkcheck2", "apt-get", "git")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("doctor", help="print the host's capabilities")
    parser.add_argument("--no-probe", action="store_true", help="do not boot the KVM probe guest")
    add_asset_options(parser)
    parser.set_defaults(func=run)


def _version(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        return "not found"
    result = run_command([path, "--version"], timeout_s=10)
    first = (result.stdout or result.stderr).strip().splitlines()
    if result.returncode is None or not first:
        return f"present ({path}), --version gave nothing"
    return f"{first[0]} ({path})"


def run(args: argparse.Namespace) -> int:
    print(f"host arch: {host_arch() or 'unsupported'}")
    print(f"cache: {cache_root()}")
    print("QEMU:")
    for arch in Arch:
        info = qemu_info(arch)
        print(f"  {arch}: {info.version + ' (' + info.path + ')' if info.path else info.missing_reason}")
    print("accelerators:")
    probe = None
    if not args.no_probe:
        matrix = matrix_from(args)
        probe = KvmProbe(asset_store(args, matrix).for_arch, log_root=cache_root() / "probe-logs")
    for arch in Arch:
        tcg = "usable" if qemu_info(arch).path else "unusable (no QEMU)"
        print(f"  {arch} tcg: {tcg}")
        if probe is None:
            print(f"  {arch} kvm: not probed")
            continue
        result = probe.result(arch)
        print(f"  {arch} kvm: {'usable' if result.usable else 'unusable'}: {result.reason}")
    print("tools:")
    for tool in TOOLS:
        print(f"  {tool}: {_version(tool)}")
    return 0
