"""How the project's files are formatted and linted, read from matrix/style.yaml
(written by ``ccvm init`` from the project's own settings; optional:
without it every tool takes its defaults).

    shfmt:
      options: [-i, "2", -s, -ci]  # passed to shfmt; none: shfmt reads .editorconfig itself
      include: ["**/*.sh"]         # which shell scripts (default: every one git knows)
      exclude: ["vendor/**"]
    shellcheck:
      severity: warning            # error, warning, info or style (shellcheck's default: style)
      options: [--exclude=SC1091]  # more shellcheck options
      include: [...]
      exclude: [...]
    nixfmt:
      options: [--width, "120"]
      skip: "the project formats Nix with alejandra"   # report every file skipped, with this reason
    ruff-check:                    # ruff check (ruff reads its own config; its excludes apply)
      options: [--extend-select, I]
      exclude: ["nix/templates/**"]
    ruff-format:
      exclude: [...]

Globs are gate.yaml's (.gitignore-style, relative to the project root).
shfmt uses the .editorconfig only when it is given no formatting flags, as
shfmt itself does; so options: [] means "as .editorconfig says".  Options
that say what to do (shfmt's -w or -d, ruff's --fix, nixfmt's --check) or
shape ccvm's report (shellcheck's --format) are refused: ccvm passes its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ccvm.errors import ConfigError
from ccvm.matrix.gate_rules import PathGlob, compile_glob
from ccvm.matrix.yamlsrc import Mapping, Mapping_at, expect_mapping, expect_sequence, load_yaml

STYLE_FILE = "style.yaml"
SEVERITIES = ("error", "warning", "info", "style")
TOOLS = ("shfmt", "shellcheck", "nixfmt", "ruff-check", "ruff-format")
# Options ccvm passes itself, per tool: a style.yaml that names one is refused (flag, then what ccvm does).
OWN_OPTIONS = {
    "shfmt": ("-w", "--write", "-l", "--list", "-d", "--diff", "-f", "--find"),
    "shellcheck": ("-f", "--format", "-C", "--color", "-V", "--version"),
    "nixfmt": ("-c", "--check", "-v", "--verify"),
    "ruff-check": ("--fix", "--no-fix", "--diff", "--output-format", "--force-exclude", "--no-force-exclude", "check"),
    "ruff-format": ("--check", "--diff", "--force-exclude", "--no-force-exclude", "format"),
}


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
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per tool, passed as they are
    shellcheck_severity: str = ""  # "" = shellcheck's own default (or .shellcheckrc's)
    files: dict[str, FileSet] = field(default_factory=dict)
    skip: dict[str, str] = field(default_factory=dict)  # per tool: why it is not run here
    options_at: dict[str, tuple[Path, int | None]] = field(default_factory=dict)  # per tool: its options' file, line

    def fileset(self, tool: str) -> FileSet:
        return self.files.get(tool, FileSet())

    def options_of(self, tool: str) -> tuple[str, ...]:
        return self.options.get(tool, ())

    def options_error(self, tool: str, message: str) -> ConfigError:
        """A tool's options are bad (``message`` says how): the error names where style.yaml gives them."""
        path, line = self.options_at.get(tool, (Path("matrix") / STYLE_FILE, None))
        return ConfigError(path, line, message)

    @property
    def shfmt_options(self) -> tuple[str, ...]:
        return self.options_of("shfmt")


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
    allowed = ["severity"] if name == "shellcheck" else []
    tool.reject_unknown_keys([*allowed, "options", "include", "exclude", "skip"], f"{name} in {STYLE_FILE}")
    return tool


def _options(tool: Mapping, name: str) -> tuple[str, ...]:
    if "options" not in tool:
        return ()
    words = _strings(tool, "options")
    for index, word in enumerate(words):
        flag = word.split("=", 1)[0]
        if flag in OWN_OPTIONS[name]:
            raise ConfigError(
                tool.path,
                tool["options"].line_of(index),
                f"{name} option {word!r}: ccvm passes its own ({' '.join(OWN_OPTIONS[name][:2])} ...) to check "
                "and to fix; drop it",
            )
    if name == "shellcheck" and any(w.split("=", 1)[0] in ("-S", "--severity") for w in words):
        raise tool.error("options", "give shellcheck's severity as severity: (not -S or --severity in options)")
    return words


def _skip(tool: Mapping, name: str) -> str:
    reason = tool.get("skip", "")
    if not isinstance(reason, str):
        raise tool.error("skip", f"{name} skip: a reason, as one string (why ccvm does not run {name} here)")
    return reason.strip()


def parse_style(doc: Mapping) -> Style:
    doc.reject_unknown_keys(list(TOOLS), STYLE_FILE)
    tools = {name: _tool(doc, name) for name in TOOLS}
    severity = tools["shellcheck"].get("severity", "")
    if severity and severity not in SEVERITIES:
        raise tools["shellcheck"].error("severity", f"severity {severity!r}: choose one of {', '.join(SEVERITIES)}")
    return Style(
        options={name: _options(t, name) for name, t in tools.items() if "options" in t},
        shellcheck_severity=str(severity),
        files={name: FileSet(include=_globs(t, "include"), exclude=_globs(t, "exclude")) for name, t in tools.items()},
        skip={name: _skip(t, name) for name, t in tools.items() if _skip(t, name)},
        options_at={name: (t.path, t.line_of("options")) for name, t in tools.items() if "options" in t},
    )


def load_style(matrix_root: Path) -> Style:
    """matrix/style.yaml alone (fmt and lint need no other matrix file); defaults when it is absent."""
    path = matrix_root / STYLE_FILE
    if not path.is_file():
        return Style()
    return parse_style(expect_mapping(load_yaml(path), path, 1, STYLE_FILE))
