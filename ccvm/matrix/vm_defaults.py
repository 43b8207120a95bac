"""Defaults for ``ccvm vm`` from the ``launcher:`` key of matrix/boot.yaml.

Flags beat CCVM_* environment variables, which beat these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccvm.matrix.axes import Accel, Arch, parse_axis_value
from ccvm.matrix.yamlsrc import Mapping

HOST = "host"


@dataclass(frozen=True, kw_only=True)
class VmDefaults:
    arch: Arch | None = None  # None: the host's arch
    accel: Accel = Accel.TCG


def parse_vm_defaults(doc: Mapping | None) -> VmDefaults:
    if doc is None:
        return VmDefaults()
    doc.reject_unknown_keys(["arch", "accel"], "launcher")
    values = {}
    try:
        if "arch" in doc and str(doc["arch"]) != HOST:
            values["arch"] = parse_axis_value("arch", doc["arch"])
    except ValueError as exc:
        raise doc.error("arch", f"{exc} (or {HOST})") from None
    try:
        if "accel" in doc:
            values["accel"] = parse_axis_value("accel", doc["accel"])
    except ValueError as exc:
        raise doc.error("accel", str(exc)) from None
    return VmDefaults(**values)
