"""What a project's treefmt-nix configuration passes to the tools ccvm runs.

treefmt-nix turns ``programs.X`` into ``settings.formatter.X`` through one
module per program (numtide/treefmt-nix, programs/X.nix).  What those
modules define is restated here, so that a project gets exactly what its
``treefmt`` runs:

* shfmt: ``-w`` (``lib.mkBefore``), then ``-i INDENT_SIZE`` (default 2) and
  ``-s`` (``simplify``, default on); with ``useEditorConfig`` neither, and
  shfmt reads .editorconfig; includes ``*.sh *.bash *.envrc *.envrc.*``;
* shellcheck: ``--external-sources``, ``--enable=A,B`` (``extra-checks``),
  ``--severity=S``, ``--source-path=P`` when set; same includes;
* nixfmt (also ``nixfmt-rfc-style``): ``--width N``, ``--indent N``,
  ``--strict`` when set; includes ``*.nix``;
* ruff-check (``programs.ruff.enable``, ``programs.ruff.check``): ``check
  --fix`` (mkBefore), ``--extend-select A,B``; ruff-format
  (``programs.ruff.format``): ``format``, ``--line-length N``; includes
  ``*.py *.pyi``.

A project's own ``settings.formatter.X.options`` (and ``includes``,
``excludes``) merge with those as the module system merges a list option:
only the definitions of the highest priority count (``lib.mkForce`` 50
over a plain 100 over ``lib.mkDefault`` 1000), and they are concatenated
by order (``lib.mkBefore`` 500, plain 1000, ``lib.mkAfter`` 1500).  So
``lib.mkForce [ ... ]`` is exactly what runs, a plain list is added to the
module's options, and ``lib.mkDefault [ ... ]`` loses to them.  The words
that say what to do (``-w``, ``check --fix``, ``format``) are dropped;
ccvm passes its own.

Files read: every ``*.nix`` that names treefmt (in its path or text), and
the ``./x.nix`` files such a file names.  A file that is not Nix ccvm can
parse, or a value that is not literal, is reported as a note and left
out; nothing here raises."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ccvm.adopt.nixattrs import Binding, Definition, Unknown, bindings
from ccvm.adopt.nixexpr import NixSyntaxError
from ccvm.adopt.settings import Found, clean_options, treefmt_glob

SHELL_INCLUDES = ("*.sh", "*.bash", "*.envrc", "*.envrc.*")


def _shfmt(cfg: dict[str, object]) -> list[str]:
    editorconfig = cfg.get("useEditorConfig") is True
    indent = cfg.get("indent_size", None if editorconfig else 2)
    simplify = cfg.get("simplify", not editorconfig)
    return (["-i", str(indent)] if isinstance(indent, int) and not isinstance(indent, bool) else []) + (
        ["-s"] if simplify is True else []
    )


def _shellcheck(cfg: dict[str, object]) -> list[str]:
    words = ["--external-sources"] if cfg.get("external-sources") is True else []
    checks = cfg.get("extra-checks")
    if isinstance(checks, list) and checks:
        words.append("--enable=" + ",".join(str(c) for c in checks))
    for key, flag in (("severity", "--severity"), ("source-path", "--source-path")):
        if isinstance(cfg.get(key), str):
            words.append(f"{flag}={cfg[key]}")
    return words


def _nixfmt(cfg: dict[str, object]) -> list[str]:
    words = []
    for key in ("width", "indent"):
        if isinstance(cfg.get(key), int) and not isinstance(cfg.get(key), bool):
            words += [f"--{key}", str(cfg[key])]
    return words + (["--strict"] if cfg.get("strict") is True else [])


def _ruff_check(cfg: dict[str, object]) -> list[str]:
    select = cfg.get("extendSelect")
    return ["--extend-select", ",".join(str(s) for s in select)] if isinstance(select, list) and select else []


def _ruff_format(cfg: dict[str, object]) -> list[str]:
    length = cfg.get("lineLength")
    return ["--line-length", str(length)] if isinstance(length, int) and not isinstance(length, bool) else []


@dataclass(frozen=True, kw_only=True)
class Module:
    """A treefmt-nix program module: the tool ccvm runs for it and what the module passes."""

    tool: str
    args: tuple[str, ...]  # mkFormatterModule's args (lib.mkBefore)
    includes: tuple[str, ...]
    options: Callable[[dict[str, object]], list[str]]
    # programs.<alias>.<key> that enable this module (lib.mkRenamedOptionModule)
    aliases: tuple[tuple[str, str], ...] = field(default=())


MODULES = {
    "shfmt": Module(tool="shfmt", args=("-w",), includes=SHELL_INCLUDES, options=_shfmt),
    "shellcheck": Module(tool="shellcheck", args=(), includes=SHELL_INCLUDES, options=_shellcheck),
    "nixfmt": Module(tool="nixfmt", args=(), includes=("*.nix",), options=_nixfmt),
    "nixfmt-rfc-style": Module(tool="nixfmt", args=(), includes=("*.nix",), options=_nixfmt),
    "ruff-check": Module(
        tool="ruff-check",
        args=("check", "--fix"),
        includes=("*.py", "*.pyi"),
        options=_ruff_check,
        aliases=(("ruff", "enable"), ("ruff", "check")),
    ),
    "ruff-format": Module(
        tool="ruff-format",
        args=("format",),
        includes=("*.py", "*.pyi"),
        options=_ruff_format,
        aliases=(("ruff", "format"),),
    ),
}
# Other Nix formatters: a project that uses one of them does not format with nixfmt.
OTHER_NIX_FORMATTERS = ("alejandra", "nixpkgs-fmt", "nixfmt-classic")
_COMMAND_TOOL = re.compile(r"\b(shfmt|shellcheck|nixfmt|ruff)\b")
_NIX_PATH = re.compile(r"(?<![\w/])\.{1,2}/[A-Za-z0-9._+/\-]+\.nix\b")


@dataclass(frozen=True, kw_only=True)
class Def:
    definition: Definition
    where: str  # file:line
    text: str


@dataclass
class _Defs:
    """Every definition found, by option."""

    programs: dict[tuple[str, str], list[Def]] = field(default_factory=dict)  # (program, option)
    formatters: dict[tuple[str, str], list[Def]] = field(default_factory=dict)  # (formatter name, key)
    global_excludes: list[Def] = field(default_factory=list)

    def add(self, binding: Binding, where: str) -> None:
        path, item = binding.path, Def(definition=binding.definition, where=where, text=binding.text)
        for index, name in enumerate(path):
            rest = path[index + 1 :]
            if name == "programs" and len(rest) == 2:
                self.programs.setdefault((rest[0], rest[1]), []).append(item)
                return
            if name == "settings" and len(rest) == 3 and rest[0] == "formatter":
                self.formatters.setdefault((rest[1], rest[2]), []).append(item)
                return
            if name == "settings" and rest in (("excludes",), ("global", "excludes")):
                self.global_excludes.append(item)
                return


def _winning(defs: list[Def]) -> list[Def]:
    """The definitions the module system keeps: those of the highest priority (lowest number)."""
    if not defs:
        return []
    best = min(d.definition.priority for d in defs)
    return [d for d in defs if d.definition.priority == best]


def _scalar(defs: list[Def], default: object, notes: list[str], name: str) -> tuple[object, Def | None]:
    kept = _winning(defs)
    if not kept:
        return default, None
    last = kept[-1]
    if isinstance(last.definition.value, Unknown):
        notes.append(f"{last.where}: {name} = {last.text} is not a value ccvm evaluates; taken as {default!r}")
        return (True if name.endswith(".enable") else default), last
    return last.definition.value, last


def _list(defs: list[Def], notes: list[str], name: str) -> tuple[list[str] | None, list[Def]]:
    """A list option merged: the kept definitions' lists in order; None when one of them cannot be read."""
    kept = sorted(_winning(defs), key=lambda d: d.definition.order)  # sorted() is stable: file order stays
    words: list[str] = []
    for item in kept:
        value = item.definition.value
        if isinstance(value, Unknown) or not isinstance(value, list):
            notes.append(f"{item.where}: {name} = {item.text} is not a list ccvm can read ({_why(value)})")
            return None, kept
        words += [str(word) for word in value]
    return words, kept


def _why(value: object) -> str:
    return value.why if isinstance(value, Unknown) else f"a {type(value).__name__}"


def _files(root: Path, nix_files: tuple[str, ...]) -> list[str]:
    """The treefmt-nix candidates: files naming treefmt, then the ./x.nix files those name."""
    named, texts = [], {}
    for relpath in nix_files:
        try:
            texts[relpath] = (root / relpath).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "treefmt" in relpath or "treefmt" in texts[relpath]:
            named.append(relpath)
    chosen = list(named)
    for relpath in named:
        for found in _NIX_PATH.findall(texts[relpath]):
            target = (PurePosixPath(relpath).parent / found).as_posix()
            normal = PurePosixPath(*[p for p in PurePosixPath(target).parts if p != "."]).as_posix()
            if normal in texts and normal not in chosen:
                chosen.append(normal)
    return chosen


@dataclass(frozen=True, kw_only=True)
class TreefmtNix:
    tools: dict[str, Found]
    notes: tuple[str, ...]
    files: tuple[str, ...]  # the files read


def read_treefmt_nix(root: Path, nix_files: tuple[str, ...]) -> TreefmtNix:
    defs, notes, read = _Defs(), [], []
    for relpath in _files(root, nix_files):
        text = (root / relpath).read_text(encoding="utf-8", errors="replace")
        try:
            found = bindings(text)
        except NixSyntaxError as exc:
            notes.append(
                f"{relpath}:{exc.line}: ccvm cannot read this Nix ({exc.message}); its treefmt settings are not used"
            )
            continue
        read.append(relpath)
        for binding in found:
            defs.add(binding, f"{relpath}:{binding.line}")
    tools: dict[str, Found] = {}
    for program, module in MODULES.items():
        found = _program(defs, program, module, notes)
        if found and module.tool not in tools:
            tools[module.tool] = found
    for name in sorted({name for name, _ in defs.formatters}):
        if name in MODULES:
            continue
        found = _custom_formatter(defs, name, notes)
        if found and found.tool not in tools:
            tools[found.tool] = found
    if "nixfmt" not in tools:
        other = _other_nix_formatter(defs)
        if other:
            tools["nixfmt"] = other
    return TreefmtNix(tools=tools, notes=tuple(notes), files=tuple(read))


def _enabled(defs: _Defs, program: str, module: Module, notes: list[str]) -> tuple[bool, Def | None]:
    keys = [(program, "enable"), *module.aliases]
    for key in keys:
        value, where = _scalar(defs.programs.get(key, []), False, notes, f"programs.{key[0]}.{key[1]}")
        if value is True:
            return True, where
    return False, None


def _program(defs: _Defs, program: str, module: Module, notes: list[str]) -> Found | None:
    enabled, enable = _enabled(defs, program, module, notes)
    user_options = defs.formatters.get((program, "options"), [])
    if not enabled and not user_options:
        return None
    cfg: dict[str, object] = {}
    for (name, key), items in defs.programs.items():
        if name == program and key not in ("enable", "includes", "excludes", "package", "priority"):
            value, _ = _scalar(items, None, notes, f"programs.{name}.{key}")
            if value is not None:
                cfg[key] = value
    module_defs = []
    if enabled:
        where = enable.where if enable else ""
        if module.args:
            module_defs.append(Def(definition=Definition(value=list(module.args), order=500), where=where, text=""))
        module_defs.append(Def(definition=Definition(value=module.options(cfg)), where=where, text=""))
    name = f"settings.formatter.{program}.options"
    words, kept = _list(module_defs + user_options, notes, name)
    if words is None:
        return None
    includes = _file_list(defs, program, "includes", module.includes if enabled else (), notes)
    excludes = _file_list(defs, program, "excludes", (), notes)
    excludes += [
        str(w) for d in defs.global_excludes if isinstance(d.definition.value, list) for w in d.definition.value
    ]
    user_kept = [d for d in kept if d.text]
    decisive = user_kept[-1] if user_kept else (kept[-1] if kept else None)
    if decisive and decisive.text:
        wrapper = f"{decisive.definition.wrapper} " if decisive.definition.wrapper else ""
        what = f"{name} = {wrapper}[ ... ]"
        where = decisive.where
    else:
        passed = " ".join(clean_options(module.tool, words)) or "no options"
        what = f"programs.{program}.enable (treefmt-nix passes {passed})"
        where = enable.where if enable else ""
    return Found(
        tool=module.tool,
        where=where,
        what=what,
        options=clean_options(module.tool, words),
        includes=tuple(dict.fromkeys(treefmt_glob(g) for g in includes)),
        excludes=tuple(dict.fromkeys(treefmt_glob(g) for g in excludes)),
    )


def _file_list(defs: _Defs, program: str, key: str, default: tuple[str, ...], notes: list[str]) -> list[str]:
    """programs.X.includes (or excludes), defaulting to the module's, plus settings.formatter.X.includes."""
    program_defs = defs.programs.get((program, key), [])
    words, _ = _list(program_defs, notes, f"programs.{program}.{key}") if program_defs else (list(default), [])
    extra, _ = _list(defs.formatters.get((program, key), []), notes, f"settings.formatter.{program}.{key}")
    return (words or []) + (extra or [])


def _custom_formatter(defs: _Defs, name: str, notes: list[str]) -> Found | None:
    """settings.formatter.NAME with a command naming one of ccvm's tools."""
    commands = defs.formatters.get((name, "command"), [])
    if not commands:
        return None
    text = commands[-1].text
    tool = _COMMAND_TOOL.search(text)
    if not tool:
        return None
    words, kept = _list(defs.formatters.get((name, "options"), []), notes, f"settings.formatter.{name}.options")
    if words is None:
        return None
    kind = tool.group(1)
    if kind == "ruff":
        kind = "ruff-format" if "format" in words else "ruff-check"
    includes, _ = _list(defs.formatters.get((name, "includes"), []), notes, f"settings.formatter.{name}.includes")
    excludes, _ = _list(defs.formatters.get((name, "excludes"), []), notes, f"settings.formatter.{name}.excludes")
    where = kept[-1].where if kept else commands[-1].where
    return Found(
        tool=kind,
        where=where,
        what=f"settings.formatter.{name} (command {text})",
        options=clean_options(kind, words),
        includes=tuple(treefmt_glob(g) for g in includes or ()),
        excludes=tuple(treefmt_glob(g) for g in excludes or ()),
    )


def _other_nix_formatter(defs: _Defs) -> Found | None:
    for program in OTHER_NIX_FORMATTERS:
        items = [d for d in defs.programs.get((program, "enable"), []) if d.definition.value is not False]
        if items:
            return Found(
                tool="nixfmt",
                where=items[-1].where,
                what=f"programs.{program}.enable",
                skip=f"the project formats Nix with {program} ({items[-1].where}), not nixfmt",
            )
    return None
