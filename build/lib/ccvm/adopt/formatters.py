"""The project's own formatter settings, for matrix/style.yaml.

Read, in this order (the first that says something about shfmt wins):

* treefmt.toml or .treefmt.toml: ``[formatter.NAME]`` whose command is
  shfmt, its ``options`` (less -w/-l/-d, which say what to do rather than
  how to format), ``includes`` and ``excludes``;
* a treefmt-nix file (any *.nix naming treefmt): ``settings.formatter.shfmt.options
  = [ ... ]``, or ``programs.shfmt.indent_size = N`` (treefmt-nix passes
  ``-i N``; with no indent_size it passes ``-i 2``);
* .editorconfig: no options at all, so shfmt reads it, as it does by hand.

treefmt's globs are file-name globs (``*.sh``) or paths from the project
root, as gate.yaml's globs are."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

TREEFMT_FILES = ("treefmt.toml", ".treefmt.toml")
_ACTION_FLAGS = frozenset({"-w", "--write", "-l", "--list", "-d", "--diff"})
_NIX_OPTIONS = re.compile(r"settings\.formatter\.shfmt\.options\s*=\s*\[([^\]]*)\]")
_NIX_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_NIX_INDENT = re.compile(r"programs\.shfmt\.indent_size\s*=\s*(\d+)")
_NIX_SHFMT_ON = re.compile(r"programs\.shfmt\.enable\s*=\s*true")


@dataclass(frozen=True, kw_only=True)
class ShfmtSettings:
    options: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    source: str = ""  # where they came from, for the report


def _format_options(options: object) -> tuple[str, ...]:
    words = [str(word) for word in options] if isinstance(options, list) else []
    return tuple(word for word in words if word not in _ACTION_FLAGS)


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def from_treefmt(root: Path) -> ShfmtSettings | None:
    for name in TREEFMT_FILES:
        path = root / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError):
            return None
        for formatter, table in data.get("formatter", {}).items():
            command = str(table.get("command", "")) if isinstance(table, dict) else ""
            if Path(command).name == "shfmt" or (not command and formatter == "shfmt"):
                return ShfmtSettings(
                    options=_format_options(table.get("options")),
                    includes=_strings(table.get("includes")),
                    excludes=_strings(table.get("excludes")),
                    source=f"{name} [formatter.{formatter}]",
                )
    return None


def from_treefmt_nix(root: Path, nix_files: tuple[str, ...]) -> ShfmtSettings | None:
    for relpath in nix_files:
        text = (root / relpath).read_text(encoding="utf-8", errors="replace")
        if "treefmt" not in text and "treefmt" not in relpath:
            continue
        listed = _NIX_OPTIONS.search(text)
        if listed:
            options = _format_options(_NIX_STRING.findall(listed.group(1)))
            return ShfmtSettings(options=options, source=f"{relpath} settings.formatter.shfmt.options")
        indent = _NIX_INDENT.search(text)
        if indent:
            return ShfmtSettings(options=("-i", indent.group(1)), source=f"{relpath} programs.shfmt.indent_size")
        if _NIX_SHFMT_ON.search(text):
            return ShfmtSettings(options=("-i", "2"), source=f"{relpath} programs.shfmt (treefmt-nix's -i 2)")
    return None


def shfmt_settings(root: Path, nix_files: tuple[str, ...]) -> ShfmtSettings:
    found = from_treefmt(root) or from_treefmt_nix(root, nix_files)
    if found:
        return found
    if (root / ".editorconfig").is_file():
        return ShfmtSettings(source=".editorconfig (shfmt reads it: no options passed)")
    return ShfmtSettings(source="none found: shfmt's defaults")
