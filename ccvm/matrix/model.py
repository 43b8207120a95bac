"""The matrix: one source of truth, read from the YAML files in ``matrix/``.

Each file owns one section; the set of files is fixed so a misspelt file
name is an error rather than a silently ignored file.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.errors import ConfigError
from ccvm.matrix.actions import CiPins, parse_actions
from ccvm.matrix.axes import AXES, MACHINES_FOR_ARCH, Accel, Arch, Machine, parse_axis_value, suggestion
from ccvm.matrix.baseline import BASELINE_FILE
from ccvm.matrix.builds import Builds, parse_builds
from ccvm.matrix.docs import DOCS_FILE
from ccvm.matrix.gate_rules import GateRules, parse_gate
from ccvm.matrix.launcher import FILE as LAUNCHER_FILE
from ccvm.matrix.launcher import Launcher, load_launcher
from ccvm.matrix.limits import MAX_TIMEOUT_S, parse_cores
from ccvm.matrix.pins import GuestPins, parse_guest
from ccvm.matrix.sizes import parse_mib
from ccvm.matrix.style import STYLE_FILE, Style, load_style
from ccvm.matrix.vm_defaults import VmDefaults, parse_vm_defaults
from ccvm.matrix.yamlsrc import Mapping, Mapping_at, Sequence, expect_mapping, expect_sequence, load_yaml


@dataclass(frozen=True, kw_only=True)
class BootSettings:
    memory_mib: int = 512
    cores: int = 1
    timeout_s: float = 120.0
    retries: int = 0


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One boot cell.  Identity is the axes; settings ride along."""

    arch: Arch
    accel: Accel
    machine: Machine
    settings: BootSettings = field(default_factory=BootSettings, compare=False)

    @property
    def id(self) -> str:
        # Axis order is fixed in code (AXES), never taken from YAML key order.
        return "-".join(str(getattr(self, axis)) for axis in AXES)


@dataclass(frozen=True, kw_only=True)
class Matrix:
    root: Path
    cells: tuple[Cell, ...]
    guest: GuestPins
    vm_defaults: VmDefaults = field(default_factory=VmDefaults)  # `ccvm vm`'s defaults (boot.yaml `launcher:`)
    builds: Builds = field(default_factory=Builds)
    gate: GateRules = field(default_factory=GateRules)
    actions: CiPins = field(default_factory=CiPins)
    # The project's own launcher (matrix/launcher.yaml), or None: then the launcher under test
    # is ccvm's embedded one (ccvm.launcher.resolve.under_test).
    declared_launcher: Launcher | None = None
    style: Style = field(default_factory=Style)

    @property
    def adopted(self) -> bool:
        """A project that adopted ccvm: its workflow installs ccvm from matrix/actions.yaml's ccvm_pip.
        In ccvm's own repository (no ccvm_pip) ccvm's embedded launcher is the project's launcher."""
        return self.actions.ccvm_pip is not None

    def cell(self, cell_id: str) -> Cell:
        for cell in self.cells:
            if cell.id == cell_id:
                return cell
        ids = [c.id for c in self.cells]
        raise KeyError(f"unknown cell {cell_id!r}{suggestion(cell_id, ids)}; cells: {', '.join(ids)}")


SETTING_KEYS = ["memory", "cores", "timeout", "retries"]


def _whole(value: object, key: str, minimum: int, maximum: int = 1000) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be a whole number, not {value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{key} must be from {minimum} to {maximum}")
    return value


def _cores(value: object) -> int:
    try:
        return parse_cores(value)
    except ValueError as exc:
        raise ValueError(f"cores: {exc}") from None


def _seconds(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TIMEOUT_S:
        raise ValueError(
            f"{key} must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g} (7 days), not {value!r}"
        )
    return float(value)


def _parse_settings(doc: Mapping, base: BootSettings) -> BootSettings:
    parsers = {
        "memory": ("memory_mib", parse_mib),
        "cores": ("cores", _cores),
        "timeout": ("timeout_s", lambda v: _seconds(v, "timeout")),
        "retries": ("retries", lambda v: _whole(v, "retries", 0)),
    }
    values = {}
    for key, (attr, parse) in parsers.items():
        if key in doc:
            try:
                values[attr] = parse(doc[key])
            except ValueError as exc:
                raise doc.error(key, str(exc)) from None
    return BootSettings(**{**base.__dict__, **values})


def _expand_entry(entry: Mapping) -> list[dict[str, object]]:
    """A cells entry: each axis a value or a list of values (a product)."""
    choices = []
    for axis in AXES:
        if axis not in entry:
            raise entry.error(None, f"cell is missing the {axis!r} axis")
        raw = entry[axis]
        values = list(raw) if isinstance(raw, Sequence) else [raw]
        parsed = []
        for value in values:
            try:
                parsed.append(parse_axis_value(axis, value))
            except ValueError as exc:
                raise entry.error(axis, str(exc)) from None
        choices.append(parsed)
    return [dict(zip(AXES, combo, strict=True)) for combo in itertools.product(*choices)]


def parse_boot(doc: Mapping) -> tuple[Cell, ...]:
    doc.reject_unknown_keys(["defaults", "cells", "launcher"], "boot.yaml")
    defaults_doc = (
        expect_mapping(doc["defaults"], doc.path, doc.line_of("defaults"), "defaults")
        if "defaults" in doc
        else Mapping_at(doc.path, doc.line)
    )
    defaults = _parse_settings(defaults_doc, BootSettings())
    entries = expect_sequence(doc.get("cells"), doc.path, doc.line_of("cells"), "cells")
    cells: dict[str, Cell] = {}
    first_line: dict[str, int] = {}
    for index, raw in enumerate(entries):
        entry = expect_mapping(raw, entries.path, entries.line_of(index), "each cell")
        entry.reject_unknown_keys([*AXES, *SETTING_KEYS], "a cell")
        settings = _parse_settings(entry, defaults)
        for axes in _expand_entry(entry):
            cell = Cell(**axes, settings=settings)
            if cell.machine not in MACHINES_FOR_ARCH[cell.arch]:
                fits = ", ".join(sorted(MACHINES_FOR_ARCH[cell.arch]))
                raise entry.error("machine", f"{cell.machine} does not go with {cell.arch}; use {fits}")
            if cell.id in cells:
                raise entry.error(None, f"duplicate cell {cell.id} (first at line {first_line[cell.id]})")
            cells[cell.id] = cell
            first_line[cell.id] = entry.line
    if not cells:
        raise doc.error("cells", "cells is empty; declare at least one cell")
    return tuple(cells.values())


SECTIONS = ("boot.yaml", "guest.yaml", "builds.yaml", "gate.yaml", "actions.yaml")
# Read when present, each by its own module (ccvm.matrix.launcher, .style, .docs, .baseline: fmt and lint).
OPTIONAL_SECTIONS = (LAUNCHER_FILE, STYLE_FILE, DOCS_FILE, BASELINE_FILE)


def matrix_root(given: str | Path | None = None, *, base: Path | None = None) -> Path:
    """The matrix directory, resolved in one place for every command: GIVEN
    (``--matrix``), else $CCVM_MATRIX, else BASE/matrix (BASE: the current
    directory, or the root a command works on).  An empty value is unset."""
    if given:
        return Path(given)
    from_env = os.environ.get("CCVM_MATRIX", "")
    if from_env:
        return Path(from_env)
    return base / "matrix" if base is not None else Path("matrix")


def load_matrix(root: Path | None = None) -> Matrix:
    root = root if root is not None else matrix_root()
    if not root.is_dir():
        raise ConfigError(root, None, "matrix directory not found; run from the project root or set CCVM_MATRIX")
    for path in sorted(root.glob("*.y*ml")):
        known = [*SECTIONS, *OPTIONAL_SECTIONS]
        if path.name not in known:
            raise ConfigError(
                path,
                None,
                f"unknown matrix file{suggestion(path.name, known)}; known files: {', '.join(known)}",
            )
    docs = {}
    for name in SECTIONS:
        path = root / name
        if not path.is_file():
            raise ConfigError(path, None, "missing matrix file")
        docs[name] = expect_mapping(load_yaml(path), path, 1, name)
    boot = docs["boot.yaml"]
    vm_defaults = (
        expect_mapping(boot["launcher"], boot.path, boot.line_of("launcher"), "launcher")
        if "launcher" in boot
        else None
    )
    return Matrix(
        root=root,
        cells=parse_boot(boot),
        guest=parse_guest(docs["guest.yaml"]),
        vm_defaults=parse_vm_defaults(vm_defaults),
        builds=parse_builds(docs["builds.yaml"]),
        gate=parse_gate(docs["gate.yaml"]),
        actions=parse_actions(docs["actions.yaml"]),
        declared_launcher=load_launcher(root),
        style=load_style(root),
    )
