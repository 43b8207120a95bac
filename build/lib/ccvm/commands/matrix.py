"""ccvm matrix: every cell, and whether this host can run it."""

from __future__ import annotations

import argparse
import json

from ccvm.commands.common import add_asset_options, add_reprobe_option, asset_store, matrix_from
from ccvm.files import cache_root
from ccvm.matrix.axes import Accel
from ccvm.matrix.model import Cell
from ccvm.qemu.probe import KvmProbe, kvm_static_reason, qemu_info


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("matrix", help="list every cell and whether it can run here")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--no-probe", action="store_true", help="do not boot the KVM probe guest; kvm cells report runnable=null"
    )
    add_reprobe_option(parser)
    add_asset_options(parser)
    parser.set_defaults(func=run)


def _runnable(cell: Cell, probe: KvmProbe | None) -> tuple[bool | None, str]:
    info = qemu_info(cell.arch)
    if info.path is None:
        return False, info.missing_reason
    if cell.accel is not Accel.KVM:
        return True, ""
    static = kvm_static_reason(cell.arch)
    if static:
        return False, static
    if probe is None:
        return None, "KVM not probed (--no-probe)"
    result = probe.result(cell.arch)
    return result.usable, "" if result.usable else result.reason


def run(args: argparse.Namespace) -> int:
    matrix = matrix_from(args)
    probe = None
    if not args.no_probe:
        store = asset_store(args, matrix)
        probe = KvmProbe(store.for_arch, log_root=cache_root() / "probe-logs", reprobe=args.reprobe)
    rows = []
    for cell in matrix.cells:
        runnable, why = _runnable(cell, probe)
        rows.append(
            {
                "id": cell.id,
                "arch": str(cell.arch),
                "accel": str(cell.accel),
                "machine": str(cell.machine),
                "runnable": runnable,
                "reason": why,
            }
        )
    if args.json:
        print(json.dumps({"cells": rows}, indent=2))
        return 0
    width = max(len(row["id"]) for row in rows)
    for row in rows:
        state = {True: "runnable", False: "not runnable", None: "unknown"}[row["runnable"]]
        print(f"{row['id'].ljust(width)}  {state}{': ' + row['reason'] if row['reason'] else ''}")
    return 0
