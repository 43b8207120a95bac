"""How the project's files are formatted and linted, read from matrix/style.yaml
(written by ``ccvm init`` from the project's own formatter settings; optional:
without it every tool takes its defaults).

    shfmt:
      options: [-i, "2", -s, -ci]  # passed to shfmt; none: shfmt reads .editorconfig itself
      include: ["**/*.sh"]         # which shell scripts (default: every one git knows)
      exclude: ["vendor/**"]
    shellcheck:
      severity: warning            # error, warning, info or style (shellcheck's default: style)
      include: [...]
      exclude: [...]
    nixfmt:
      include: [...]
      exclude: [...]

Globs are gate.yaml's (.gitignore-style, relative to the project root).
shfmt uses the .editorconfig only when it is given no formatting flags, as
shfmt itself does; so options: [] means "as .editorconfig says".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ccvm.errors import ConfigError
from ccvm.matrix.gate_rules import PathGlob, compile_glob
from ccvm.matrix.yamlsrc import Mapping, Mapping_at, expect_mapping, expect_sequence, load_yaml

STYLE_FILE = "style.yaml"
SEVERITIES = ("error", "warning", "info", "style")
TOOLS = ("shfmt", "shellcheck", "nixfmt")


@dataclass(frozen=True, kw_only=True)
class FileSet:
    """Which of the files a tool would take: all (no include), minus exclude."""

    include: tuple[PathGlob, ...] = ()
    exclude: tuple[PathGlob, ...] = ()

    def select(self, paths: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(
            path
            for path in paths
            if (not self.include or any(g.matches(path) for g in self.include))
            and not any(g.matches(path) for g in self.exclude)
        )


@dataclass(frozen=True, kw_only=True)
class Style:
    shfmt_options: tuple[str, ...] = ()
    shellcheck_severity: str = ""  # "" = shellcheck's own default (or .shellcheckrc's)
    files: dict[str, FileSet] = field(default_factory=dict)

    def fileset(self, tool: str) -> FileSet:
        return self.files.get(tool, FileSet())


def _strings(doc: Mapping, key: str) -> tuple[str, ...]:
    items = expect_sequence(doc[key], doc.path, doc.line_of(key), key)
    words = []
    for index, item in enumerate(items):
        if not isinstance(item, str | int) or isinstance(item, bool):
            raise ConfigError(items.path, items.line_of(index), f"every item of {key} must be a plain string")
        words.append(str(item))
    return tuple(words)


def _globs(doc: Mapping, key: str) -> tuple[PathGlob, ...]:
    if key not in doc:
        return ()
    globs = []
    for index, text in enumerate(_strings(doc, key)):
        try:
            globs.append(compile_glob(text))
        except ValueError as exc:
            raise ConfigError(doc.path, doc[key].line_of(index), str(exc)) from None
    return tuple(globs)


def _tool(doc: Mapping, name: str) -> Mapping:
    if name not in doc:
        return Mapping_at(doc.path, doc.line)
    tool = expect_mapping(doc[name], doc.path, doc.line_of(name), name)
    allowed = {"shfmt": ["options"], "shellcheck": ["severity"], "nixfmt": []}[name]
    tool.reject_unknown_keys([*allowed, "include", "exclude"], f"{name} in {STYLE_FILE}")
    return tool


def parse_style(doc: Mapping) -> Style:
    doc.reject_unknown_keys(list(TOOLS), STYLE_FILE)
    tools = {name: _tool(doc, name) for name in TOOLS}
    severity = tools["shellcheck"].get("severity", "")
    if severity and severity not in SEVERITIES:
        raise tools["shellcheck"].error("severity", f"severity {severity!r}: choose one of {', '.join(SEVERITIES)}")
    options = _strings(tools["shfmt"], "options") if "options" in tools["shfmt"] else ()
    return Style(
        shfmt_options=options,
        shellcheck_severity=str(severity),
        files={name: FileSet(include=_globs(t, "include"), exclude=_globs(t, "exclude")) for name, t in tools.items()},
    )


def load_style(matrix_root: Path) -> Style:
    """matrix/style.yaml alone (fmt and lint need no other matrix file); defaults when it is absent."""
    path = matrix_root / STYLE_FILE
    if not path.is_file():
        return Style()
    return parse_style(expect_mapping(load_yaml(path), path, 1, STYLE_FILE))
