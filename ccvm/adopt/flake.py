"""What a flake offers: its systems, checks and packages.

First by evaluating it (``nix flake show --json``, offline, under a timeout);
where that cannot work (no nix, an input that is not in the store and cannot
be fetched offline, an evaluation error) by reading flake.nix's text, and
saying so: the text gives the system strings it names and the attribute
names of its ``checks`` and ``packages`` sets, which is a guess."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.matrix.builds import SYSTEMS
from ccvm.nixtool import find_nix
from ccvm.text import first_line

EVAL_TIMEOUT_S = 60.0
_SYSTEM = re.compile(r'"((?:x86_64|aarch64|i686|armv7l|riscv64)-(?:linux|darwin))"')
_ATTR = re.compile(r'^\s*("?)([A-Za-z_][A-Za-z0-9_\'-]*)\1\s*=', re.MULTILINE)


@dataclass(frozen=True, kw_only=True)
class FlakeFacts:
    systems: tuple[str, ...] = ()  # every system the flake names, ccvm's or not
    checks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # system -> check names
    packages: dict[str, tuple[str, ...]] = field(default_factory=dict)  # system -> package names
    how: str = ""  # "nix flake show" or "flake.nix's text"
    why_text: str = ""  # why evaluation was not used

    @property
    def ccvm_systems(self) -> tuple[str, ...]:
        return tuple(system for system in self.systems if system in SYSTEMS)


def _by_system(doc: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(doc, dict):
        return {}
    return {system: tuple(sorted(names)) for system, names in doc.items() if isinstance(names, dict)}


def evaluate(root: Path) -> tuple[FlakeFacts | None, str]:
    """The flake as nix sees it, or None and why not."""
    nix = find_nix()
    if nix is None:
        return None, "nix is not installed"
    # The directory as a flake reference: in a git work tree nix takes only the files git knows (not a .venv).
    done = nix.run("flake", "show", "--json", "--offline", "--no-write-lock-file", str(root), timeout_s=EVAL_TIMEOUT_S)
    if done.returncode is None:
        return None, f"nix flake show took longer than {EVAL_TIMEOUT_S:g}s"
    try:
        doc = json.loads(done.stdout) if done.ok else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
        return None, f"nix flake show failed offline: {first_line(errors[0] if errors else done.stderr)}"
    checks, packages = _by_system(doc.get("checks")), _by_system(doc.get("packages"))
    systems = tuple(dict.fromkeys([*checks, *packages]))
    return FlakeFacts(systems=systems, checks=checks, packages=packages, how="nix flake show"), ""


def _block_after(text: str, start: int) -> str:
    """The balanced { ... } that opens at or after ``start`` (its inside), or ''."""
    opening = text.find("{", start)
    if opening == -1:
        return ""
    depth = 0
    for index in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[opening + 1 : index]
    return ""


def _top_level_names(block: str) -> tuple[str, ...]:
    """Attribute names at depth 0 of an attribute set's inside."""
    names, depth, flat = [], 0, []
    for char in block:
        depth += {"{": 1, "}": -1, "[": 1, "]": -1, "(": 1, ")": -1}.get(char, 0)
        flat.append(char if depth == 0 or char in "{}" and depth <= 1 else " ")
    for match in _ATTR.finditer("".join(flat)):
        if match.group(2) not in ("inherit", "let", "in", "rec", "with"):
            names.append(match.group(2))
    return tuple(dict.fromkeys(names))


def _set_names(text: str, output: str) -> tuple[str, ...]:
    """Names in ``output = ...{ name = ...; }`` (through one function call, e.g. forAllSystems (system: {...}))."""
    found = re.search(rf"(?<![\w.]){output}\s*=", text)
    if not found:
        return ()
    names = _top_level_names(_block_after(text, found.end()))
    if names and all(_SYSTEM.fullmatch(f'"{name}"') for name in names):  # checks = { x86_64-linux = {...}; }
        return _top_level_names(_block_after(text, text.find("{", found.end()) + 1))
    return names


def read_text(root: Path, why: str) -> FlakeFacts:
    text = (root / "flake.nix").read_text(encoding="utf-8", errors="replace")
    text = re.sub(r"#[^\n]*", "", text)  # comments
    systems = tuple(dict.fromkeys(_SYSTEM.findall(text)))
    checks, packages = _set_names(text, "checks"), _set_names(text, "packages")
    return FlakeFacts(
        systems=systems,
        checks={system: checks for system in systems} if checks else {},
        packages={system: packages for system in systems} if packages else {},
        how="flake.nix's text",
        why_text=why,
    )


def read_flake(root: Path) -> FlakeFacts | None:
    if not (root / "flake.nix").is_file():
        return None
    facts, why = evaluate(root)
    return facts or read_text(root, why)
