"""The project's own settings for every tool ccvm runs, for matrix/style.yaml.

For each tool (shfmt, shellcheck, nixfmt, ruff check, ruff format) the
first of these that says something wins:

1. treefmt.toml or .treefmt.toml: the ``[formatter.NAME]`` whose command is
   the tool, its ``options`` (less the words that say what to do),
   ``includes`` and ``excludes``;
2. treefmt-nix (``ccvm.adopt.treefmtnix``): ``programs.X`` with what its
   module passes, ``settings.formatter.X.options`` merged as the module
   system merges it (``lib.mkForce`` and the others);
3. a line of the project's own CI workflows, Makefile or pre-commit
   configuration that runs the tool with flags (``ccvm.adopt.toollines``);
4. for nixfmt, the flake's ``formatter`` output.

What the tools read by themselves is left to them, and noted: shfmt
reads .editorconfig when given no formatting flags, shellcheck reads
.shellcheckrc, ruff reads pyproject.toml / ruff.toml (and its excludes
apply: ccvm hands it files with ``--force-exclude``).

``own_setting`` says, for one tool and one file, which of the project's
settings holds that file ("" when only the tool's defaults do): ``ccvm
init`` lists the findings a project already has under its own settings
apart from those under defaults it never chose."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ccvm.adopt import editorconfig
from ccvm.adopt.nixattrs import Unknown, bindings
from ccvm.adopt.nixexpr import NixSyntaxError
from ccvm.adopt.settings import TOOLS, Found, clean_options, treefmt_glob
from ccvm.adopt.toollines import tool_lines
from ccvm.adopt.treefmtnix import OTHER_NIX_FORMATTERS, read_treefmt_nix
from ccvm.checks.sourcefiles import candidate_files, is_shell_script

TREEFMT_FILES = ("treefmt.toml", ".treefmt.toml")
SHELLCHECKRC = (".shellcheckrc", "shellcheckrc")
RUFF_FILES = (".ruff.toml", "ruff.toml", "pyproject.toml")
_TOOL_RUFF = re.compile(r"^[ \t]*\[tool\.ruff", re.MULTILINE)
_SEVERITY = re.compile(r"^(?:--severity=|-S=?)(\w+)$")


@dataclass(frozen=True, kw_only=True)
class ToolStyle:
    """What ccvm runs one tool with, and where that came from."""

    tool: str
    found: Found | None = None  # the source whose settings are used; None: the tool's defaults
    also: tuple[Found, ...] = ()  # other sources that said something, not used

    @property
    def options(self) -> tuple[str, ...]:
        return self.found.options if self.found else ()

    @property
    def includes(self) -> tuple[str, ...]:
        return self.found.includes if self.found else ()

    @property
    def excludes(self) -> tuple[str, ...]:
        return self.found.excludes if self.found else ()

    @property
    def skip(self) -> str:
        return self.found.skip if self.found else ""

    @property
    def source(self) -> str:
        return self.found.source if self.found else ""


@dataclass(frozen=True, kw_only=True)
class ProjectStyle:
    root: Path
    tools: dict[str, ToolStyle]
    notes: tuple[str, ...] = ()
    editorconfigs: tuple[editorconfig.EditorConfig, ...] = ()
    shellcheckrcs: tuple[str, ...] = ()  # relative paths
    ruff_configs: dict[str, str] = field(default_factory=dict)  # directory ("." for the root) -> "file:line"
    shell_files: tuple[str, ...] = ()

    def tool(self, name: str) -> ToolStyle:
        return self.tools.get(name, ToolStyle(tool=name))

    def reads_itself(self, name: str) -> tuple[str, ...]:
        """The project's files the tool reads by itself (with no options from elsewhere)."""
        if name == "shfmt" and not self.tool(name).options:
            used = {
                where.split(":")[0]
                for script in self.shell_files
                for _, where in editorconfig.applied(list(self.editorconfigs), script).keys.values()
            }
            return tuple(sorted(used))
        if name == "shellcheck":
            return self.shellcheckrcs
        if name.startswith("ruff"):
            return tuple(self.ruff_configs.values())
        return ()

    def own_setting(self, tool: str, relpath: str) -> str:
        """Which of the project's own settings holds this file for this tool ("" for the tool's defaults)."""
        chosen = self.tool(tool)
        if tool == "shfmt" and not chosen.options:
            applied = editorconfig.applied(list(self.editorconfigs), relpath)
            if applied.formats:
                return applied.describe()
        if chosen.found and not chosen.skip:
            return chosen.found.source
        if tool == "shellcheck":
            nearest = _nearest(relpath, {str(PurePosixPath(p).parent): p for p in self.shellcheckrcs})
            return nearest
        if tool.startswith("ruff"):
            return _nearest(relpath, self.ruff_configs)
        return ""


def _nearest(relpath: str, by_directory: dict[str, str]) -> str:
    directory = PurePosixPath(relpath).parent
    while True:
        key = directory.as_posix()
        if key in by_directory:
            return by_directory[key]
        if key == ".":
            return ""
        directory = directory.parent


# --- treefmt.toml ---------------------------------------------------------------------------------------------------


def _toml_tool(name: str, table: dict) -> str:
    command = PurePosixPath(str(table.get("command", "")) or name).name
    words = [str(w) for w in table.get("options", [])] if isinstance(table.get("options"), list) else []
    if command == "ruff" or (not table.get("command") and name.startswith("ruff")):
        return "ruff-format" if "format" in words or name == "ruff-format" else "ruff-check"
    if command in ("shfmt", "shellcheck", "nixfmt"):
        return command
    if command in OTHER_NIX_FORMATTERS:
        return command
    return ""


def _line_of(text: str, pattern: str) -> int:
    found = re.search(pattern, text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else 1


def from_treefmt_toml(root: Path) -> tuple[dict[str, Found], list[str]]:
    tools: dict[str, Found] = {}
    notes: list[str] = []
    for name in TREEFMT_FILES:
        path = root / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
            notes.append(f"{name}: ccvm cannot read it ({exc}); its formatter settings are not used")
            continue
        global_excludes = [str(g) for g in data.get("excludes", data.get("global", {}).get("excludes", []))]
        for formatter, table in (data.get("formatter") or {}).items():
            if not isinstance(table, dict):
                continue
            tool = _toml_tool(formatter, table)
            if not tool:
                continue
            line = _line_of(text, rf"^[ \t]*\[formatter\.\"?{re.escape(formatter)}\"?\]")
            where = f"{name}:{line}"
            if tool in OTHER_NIX_FORMATTERS:
                tools.setdefault(
                    "nixfmt",
                    Found(
                        tool="nixfmt",
                        where=where,
                        what=f"[formatter.{formatter}]",
                        skip=f"the project formats Nix with {tool} ({where}), not nixfmt",
                    ),
                )
                continue
            words = [str(w) for w in table.get("options", [])] if isinstance(table.get("options"), list) else []
            tools.setdefault(
                tool,
                Found(
                    tool=tool,
                    where=where,
                    what=f"[formatter.{formatter}]",
                    options=clean_options(tool, words),
                    includes=tuple(treefmt_glob(str(g)) for g in table.get("includes", []) or []),
                    excludes=tuple(treefmt_glob(str(g)) for g in [*(table.get("excludes") or []), *global_excludes]),
                ),
            )
    return tools, notes


# --- the flake's formatter ------------------------------------------------------------------------------------------


def from_flake_formatter(root: Path) -> Found | None:
    """flake.nix's ``formatter`` output, when it names a Nix formatter (``nix fmt`` runs it)."""
    path = root / "flake.nix"
    if not path.is_file():
        return None
    try:
        found = bindings(path.read_text(encoding="utf-8", errors="replace"))
    except NixSyntaxError:
        return None
    for binding in found:
        if "formatter" not in binding.path[-2:] and binding.path[-1:] != ("formatter",):
            continue
        text = binding.text if isinstance(binding.definition.value, Unknown) else str(binding.definition.value)
        where = f"flake.nix:{binding.line}"
        for other in OTHER_NIX_FORMATTERS:
            if re.search(rf"\b{re.escape(other)}\b", text):
                return Found(
                    tool="nixfmt",
                    where=where,
                    what=f"formatter = {text}",
                    skip=f"the project formats Nix with {other} ({where}: nix fmt), not nixfmt",
                )
        if re.search(r"\bnixfmt(?:-rfc-style|-tree)?\b", text):
            return Found(tool="nixfmt", where=where, what=f"formatter = {text} (nix fmt)")
    return None


# --- ruff and shellcheck's own files --------------------------------------------------------------------------------


def _ruff_configs(root: Path, relpaths: list[str]) -> dict[str, str]:
    """Per directory, the ruff configuration ruff would read there (ruff.toml, .ruff.toml, [tool.ruff])."""
    found: dict[str, str] = {}
    for relpath in sorted(
        relpaths, key=lambda p: RUFF_FILES.index(PurePosixPath(p).name) if PurePosixPath(p).name in RUFF_FILES else 9
    ):
        name = PurePosixPath(relpath).name
        if name not in RUFF_FILES:
            continue
        directory = PurePosixPath(relpath).parent.as_posix()
        if directory in found:
            continue
        try:
            text = (root / relpath).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if name == "pyproject.toml":
            if not _TOOL_RUFF.search(text):
                continue
            found[directory] = f"{relpath}:{_line_of(text, _TOOL_RUFF.pattern)} [tool.ruff]"
        else:
            found[directory] = f"{relpath}:1"
    return found


# --- all of it ------------------------------------------------------------------------------------------------------


def project_style(root: Path, nix_files: tuple[str, ...] | None = None) -> ProjectStyle:
    """The project's settings for each tool ccvm runs, with where each came from."""
    relpaths, _ = candidate_files(root)
    nix = nix_files if nix_files is not None else tuple(p for p in relpaths if p.endswith(".nix"))
    toml_tools, notes = from_treefmt_toml(root)
    nix_result = read_treefmt_nix(root, nix)
    notes += nix_result.notes
    lines = tool_lines(root, tuple(relpaths))
    flake_formatter = from_flake_formatter(root)
    tools = {}
    for tool in TOOLS:
        candidates = [
            *([toml_tools[tool]] if tool in toml_tools else []),
            *([nix_result.tools[tool]] if tool in nix_result.tools else []),
            *[found for found in lines if found.tool == tool],
            *([flake_formatter] if tool == "nixfmt" and flake_formatter else []),
        ]
        if candidates:
            tools[tool] = ToolStyle(tool=tool, found=candidates[0], also=tuple(candidates[1:]))
    return ProjectStyle(
        root=root,
        tools=tools,
        notes=tuple(notes),
        editorconfigs=tuple(editorconfig.load(root, tuple(relpaths))),
        shellcheckrcs=tuple(p for p in relpaths if PurePosixPath(p).name in SHELLCHECKRC),
        ruff_configs=_ruff_configs(root, relpaths),
        shell_files=tuple(p for p in relpaths if is_shell_script(root / p)),
    )


# --- matrix/style.yaml ----------------------------------------------------------------------------------------------


def _j(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def split_severity(options: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """shellcheck's severity (-S X, --severity=X) taken out of its options."""
    severity, rest, words = "", [], list(options)
    index = 0
    while index < len(words):
        word = words[index]
        found = _SEVERITY.match(word)
        if word in ("-S", "--severity") and index + 1 < len(words):
            severity = words[index + 1]
            index += 2
            continue
        if found:
            severity = found.group(1)
        else:
            rest.append(word)
        index += 1
    return severity, tuple(rest)


def _tool_lines(style: ProjectStyle, name: str) -> list[str]:
    chosen = style.tool(name)
    lines = [f"{name}:"]
    body: list[str] = []
    if chosen.found:
        body.append(f"  # from {chosen.source}")
    for other in chosen.also:
        body.append(f"  # also found, not used: {other.source}")
    itself = style.reads_itself(name)
    if itself:
        body.append(f"  # {name.split('-')[0]} reads {', '.join(itself)} itself")
    if not chosen.found and not itself:
        body.append(f"  # the project sets nothing for {name}: {name.split('-')[0]}'s defaults")
    if chosen.skip:
        body.append(f"  skip: {_j(chosen.skip)}")
    options = chosen.options
    if name == "shellcheck":
        severity, options = split_severity(options)
        if severity:
            body.append(f"  severity: {_j(severity)}")
    if options or name == "shfmt":
        body.append(f"  options: {_j(list(options))}")
    if chosen.includes:
        body.append(f"  include: {_j(list(chosen.includes))}")
    if chosen.excludes:
        body.append(f"  exclude: {_j(list(chosen.excludes))}")
    if not any(not line.lstrip().startswith("#") for line in body):
        return [line.strip() for line in body] + [f"{name}: {{}}"]
    return lines + body


def style_yaml_text(style: ProjectStyle, header: str) -> str:
    lines = [
        header,
        "# Formatting and lint settings (see ccvm's docs, Static checks), each from where `ccvm init` found it.",
    ]
    for name in TOOLS:
        lines += _tool_lines(style, name)
    return "\n".join(lines) + "\n"


def describe(style: ProjectStyle) -> list[str]:
    """One line per tool for init's report: what it runs with and why."""
    out = []
    for name in TOOLS:
        chosen = style.tool(name)
        itself = style.reads_itself(name)
        if chosen.skip:
            out.append(f"{name}: not run ({chosen.skip})")
        elif chosen.found:
            out.append(f"{name}: {' '.join(chosen.options) or 'no options'} ({chosen.source})")
        elif itself:
            out.append(f"{name}: no options ({name.split('-')[0]} reads {', '.join(itself)} itself)")
        else:
            out.append(f"{name}: no setting found: {name.split('-')[0]}'s defaults")
    return out
