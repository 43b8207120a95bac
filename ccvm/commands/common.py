"""Options and steps several commands share."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ccvm.errors import UsageError
from ccvm.guest.assets import AssetStore, Overrides
from ccvm.matrix.axes import Arch, parse_axis_value
from ccvm.matrix.limits import MAX_TIMEOUT_S, parse_cores
from ccvm.matrix.model import Matrix, load_matrix, matrix_root
from ccvm.matrix.packaged import packaged_matrix
from ccvm.matrix.pins import PinPolicy


def matrix_from(args: argparse.Namespace) -> Matrix:
    return load_matrix(matrix_root(args.matrix))


def launcher_matrix_from(args: argparse.Namespace) -> Matrix:
    """What `ccvm vm` and `ccvm doctor` need: the project's matrix, or, outside a
    project (no matrix/ here and none named with --matrix or $CCVM_MATRIX),
    ccvm's packaged guest pins and default launcher settings."""
    root = matrix_root(args.matrix)
    if args.matrix or os.environ.get("CCVM_MATRIX") or root.is_dir():
        return load_matrix(root)
    return packaged_matrix()


def add_asset_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "guest assets",
        "files given by path replace the pinned Debian packages "
        "(environment: CCVM_KERNEL_<ARCH>, CCVM_INITRD_<ARCH>, CCVM_BUSYBOX_<ARCH>, CCVM_MODULES_<ARCH>)",
    )
    for kind, meta in (
        ("kernel", "ARCH=PATH"),
        ("initrd", "ARCH=PATH"),
        ("busybox", "ARCH=PATH"),
        ("modules", "ARCH=DIR"),
    ):
        group.add_argument(
            f"--{kind}", action="append", default=[], metavar=meta, help=f"use this {kind} for ARCH (x86_64 or aarch64)"
        )
    group.add_argument(
        "--pin-policy",
        choices=[p.value for p in PinPolicy],
        help="when a pinned package has left the archive (default: matrix/guest.yaml, or $CCVM_PIN_POLICY)",
    )


def add_reprobe_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reprobe",
        action="store_true",
        help="probe KVM again, ignoring the result remembered from an earlier run",
    )


def _per_arch(values: list[str], option: str) -> dict[Arch, Path]:
    found = {}
    for value in values:
        raw_arch, sep, path = value.partition("=")
        if not sep or not path:
            raise UsageError(f"{option} {value!r}: write it as ARCH=PATH, e.g. {option} x86_64=/boot/vmlinuz")
        try:
            found[parse_axis_value("arch", raw_arch)] = Path(path)
        except ValueError as exc:
            raise UsageError(f"{option}: {exc}") from None
    return found


def _note_on_stderr(text: str) -> None:
    print(f"ccvm: {text}", file=sys.stderr, flush=True)


def asset_store(args: argparse.Namespace, matrix: Matrix, notify: Callable[[str], None] | None = None) -> AssetStore:
    """The guest asset store the options ask for; ``notify`` gets its progress notes (default: stderr)."""
    from_cli = Overrides(
        **{kind: _per_arch(getattr(args, kind), f"--{kind}") for kind in ("kernel", "initrd", "busybox", "modules")}
    )
    overrides = Overrides.from_env(os.environ).merged(from_cli)
    raw_policy = args.pin_policy or os.environ.get("CCVM_PIN_POLICY")
    try:
        policy = PinPolicy(raw_policy) if raw_policy else None
    except ValueError:
        raise UsageError(f"CCVM_PIN_POLICY={raw_policy!r}: choose strict or newest") from None
    return AssetStore(matrix.guest, overrides=overrides, policy=policy, notify=notify or _note_on_stderr)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds")
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    if value > MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TIMEOUT_S:g} seconds (7 days)")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def core_count(text: str) -> int:
    try:
        return parse_cores(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
