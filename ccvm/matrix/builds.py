"""Build targets (matrix/builds.yaml): flake attributes per Nix system,
and the rules of `ccvm flake-check`.

Each target is built as ``<flake>#packages.<system>.<attr>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ccvm.errors import ConfigError
from ccvm.matrix.axes import Arch, suggestion
from ccvm.matrix.limits import MAX_TIMEOUT_S
from ccvm.matrix.yamlsrc import Mapping, Sequence, expect_mapping

SYSTEMS = tuple(arch.nix_system for arch in Arch)  # x86_64-linux, aarch64-linux
DEFAULT_FLAKE = "."
DEFAULT_TIMEOUT_S = 3600.0
WARNING_RULES = ("fail", "allow")  # flake_check.warnings: each evaluation warning fails, or is only listed


@dataclass(frozen=True, kw_only=True, order=True)
class BuildTarget:
    attr: str
    system: str

    @property
    def name(self) -> str:
        return f"{self.attr}.{self.system}"

    def installable(self, flake: str) -> str:
        return f"{flake}#packages.{self.system}.{self.attr}"


@dataclass(frozen=True, kw_only=True)
class Builds:
    flake: str = DEFAULT_FLAKE
    timeout_s: float = DEFAULT_TIMEOUT_S  # one `nix build` of one target
    targets: tuple[BuildTarget, ...] = field(default_factory=tuple)
    flake_check_warnings: str = "fail"  # one of WARNING_RULES


def _systems(doc: Mapping, attr: str) -> list[str]:
    raw = doc[attr]
    items = raw if isinstance(raw, Sequence) else None
    if items is None or not items:
        raise doc.error(attr, f"target {attr!r} must list its systems, e.g. [{', '.join(SYSTEMS)}]")
    systems = []
    for index, system in enumerate(items):
        text = str(system)
        if text not in SYSTEMS:
            raise _item_error(
                items,
                index,
                f"unknown system {text!r}{suggestion(text, list(SYSTEMS))}; choose from {', '.join(SYSTEMS)}",
            )
        if text in systems:
            raise _item_error(items, index, f"system {text} is listed twice for {attr!r}")
        systems.append(text)
    return systems


def _item_error(items: Sequence, index: int, message: str) -> ConfigError:
    return ConfigError(items.path, items.line_of(index), message)


def _timeout(doc: Mapping) -> float:
    raw = doc["timeout"]
    try:
        value = float(raw) if not isinstance(raw, bool) else 0.0
    except (TypeError, ValueError):
        value = 0.0
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT_S:
        raise doc.error(
            "timeout", f"timeout must be a positive number of seconds, at most {MAX_TIMEOUT_S:g} (7 days), not {raw!r}"
        )
    return value


def _flake_check_warnings(doc: Mapping) -> str:
    section = expect_mapping(doc["flake_check"], doc.path, doc.line_of("flake_check"), "flake_check")
    section.reject_unknown_keys(["warnings"], "flake_check")
    rule = section.get("warnings", WARNING_RULES[0])
    if rule not in WARNING_RULES:
        raise section.error(
            "warnings",
            f"flake_check: warnings must be fail (each evaluation warning of nix flake check is a failing case) "
            f"or allow (listed, not counted), not {rule!r}",
        )
    return rule


def parse_builds(doc: Mapping) -> Builds:
    doc.reject_unknown_keys(["flake", "timeout", "targets", "flake_check"], "builds.yaml")
    flake = doc.get("flake", DEFAULT_FLAKE)
    if not isinstance(flake, str) or not flake.strip():
        raise doc.error("flake", "flake must be a flake reference such as '.' or 'path:/src/project'")
    timeout_s = _timeout(doc) if "timeout" in doc else DEFAULT_TIMEOUT_S
    if "targets" not in doc:
        raise doc.error(None, "builds.yaml needs `targets`: flake attributes mapped to the systems to build them on")
    targets_doc = expect_mapping(doc["targets"], doc.path, doc.line_of("targets"), "targets")
    targets = [BuildTarget(attr=attr, system=system) for attr in targets_doc for system in _systems(targets_doc, attr)]
    warnings = _flake_check_warnings(doc) if "flake_check" in doc else WARNING_RULES[0]
    return Builds(flake=flake.strip(), timeout_s=timeout_s, targets=tuple(targets), flake_check_warnings=warnings)
