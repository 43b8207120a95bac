"""ccvm doctor: what this host can do."""

from __future__ import annotations

import argparse

from ccvm.checks.nix import preflight
from ccvm.commands.common import add_asset_options, asset_store, launcher_matrix_from
from ccvm.errors import HostError
from ccvm.files import cache_root
from ccvm.matrix.axes import Accel, Arch, host_arch
from ccvm.nixtool import find_nix, missing_reason, nixpkgs_note
from ccvm.processes import find_program
from ccvm.processes import run as run_command
from ccvm.qemu.probe import KvmProbe, probe_guest, qemu_info

TCG_PROBE_TIMEOUT_S = 120.0
TOOLS = ("nix", "nixfmt", "shfmt", "shellcheck", "ruff", "mdbook", "mdbook-linkcheck2", "apt-get", "git")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("doctor", help="print the host's capabilities")
    parser.add_argument("--no-probe", action="store_true", help="do not boot the probe guests (TCG and KVM)")
    add_asset_options(parser)
    parser.set_defaults(func=run)


def _version(tool: str) -> str:
    path = find_program(tool, path_only=True)
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
    store = probe = None
    logs = cache_root() / "probe-logs"
    if not args.no_probe:
        store = asset_store(args, launcher_matrix_from(args))
        probe = KvmProbe(store.for_arch, log_root=logs)
    for arch in Arch:
        if store is None:
            print(f"  {arch} tcg: {'QEMU present, not probed' if qemu_info(arch).path else 'unusable (no QEMU)'}")
            print(f"  {arch} kvm: not probed")
            continue
        tcg = probe_guest(arch, Accel.TCG, store.for_arch(arch), log_root=logs, timeout_s=TCG_PROBE_TIMEOUT_S)
        print(f"  {arch} tcg: {'works' if tcg.usable else 'unusable'}: {tcg.reason}")
        result = probe.result(arch)
        print(f"  {arch} kvm: {'works' if result.usable else 'unusable'}: {result.reason}")
    print("tools:")
    for tool in TOOLS:
        print(f"  {tool}: {_version(tool)}")
    nix_problems = _print_nix()
    if nix_problems:
        raise HostError(f"nix cannot build here: {len(nix_problems)} problem(s), listed under nix: above")
    return 0


def _print_nix() -> list[str]:
    """The Nix preflight's findings, printed; the problems returned."""
    print("nix:")
    try:
        nix = find_nix()
    except HostError as exc:
        print(f"  problem: {exc}")
        return [str(exc)]
    if nix is None:
        print(f"  {missing_reason()}")
        return []
    print(f"  version: {nix.version} ({nix.path})")
    note = nixpkgs_note(nix.version)
    if note:
        print(f"  note: {note}")
    found = preflight.problems(nix)
    for problem in found:
        print(f"  problem: {problem}")
    if not found:
        print(f"  {nix.version} can build here (store, build users, nix-command and flakes checked)")
        print(f"  {preflight.own_config_note(nix)}")
    return found
