"""The launcher under test (matrix/launcher.yaml).

A project declares the VM wrapper it ships: how to build it per Nix system,
the argv that starts it, its environment per cell, how each share mode is
selected, its dry-run hook and what that prints, where secrets live, its
own host test scripts and its boot scenarios.  Without the file the
launcher under test is ccvm's embedded ``ccvm vm`` (``ccvm.launcher.embedded``),
declared with the same ``Launcher`` type.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.errors import ConfigError
from ccvm.matrix import yamlvalues as values
from ccvm.matrix.axes import suggestion
from ccvm.matrix.launcher_boot import BootDeclaration, parse_boot_declaration
from ccvm.matrix.yamlsrc import Mapping, Sequence, expect_mapping, load_yaml

FILE = "launcher.yaml"
PLACEHOLDERS = ("arch", "accel", "machine")
SHARE_MODES = ("overlay", "writable")
DEFAULT_DRYRUN_TIMEOUT_S = 120.0
MAX_DRYRUN_TIMEOUT_S = 3600.0
TOP_KEYS = [
    "name",
    "build",
    "argv",
    "program",
    "env",
    "share",
    "dry_run",
    "secrets",
    "config_files",
    "host_scripts",
    "launcher_variable",
    "boot",
    "guest_assets",
]
# How `ccvm boot` hands ccvm's embedded guest (kernel, initramfs) to a declared launcher:
#   none  it brings its own guest
#   env   CCVM_KERNEL_<ARCH> and CCVM_INITRD_<ARCH> name the files for the cell's arch
GUEST_ASSET_MODES = ("none", "env")
_NIX_SYSTEM = re.compile(r"^(x86_64|aarch64|i686|armv7l|riscv64|powerpc64le)-(linux|darwin)$")


class DryRunStyle(enum.StrEnum):
    PLAN = "plan"  # ccvm's JSON launch plan on stdout
    SCRATCH_DIR = "scratch-dir"  # the path of a scratch directory holding what was staged


class ArgvFormat(enum.StrEnum):
    NUL = "nul"  # each word followed by (or separated by) a NUL byte
    LINES = "lines"  # one word per line: cannot carry a newline inside a word


@dataclass(frozen=True, kw_only=True)
class BuildStep:
    system: str  # a Nix system, e.g. x86_64-linux
    flake: str | None = None  # an installable, e.g. .#ccvm
    command: tuple[str, ...] = ()  # or a command run from the project root


@dataclass(frozen=True, kw_only=True)
class ShareSwitch:
    mode: str  # overlay | writable
    flag: str | None = None  # put before the program's arguments
    variable: str | None = None  # or set in the environment
    value: str = "1"

    @property
    def is_default(self) -> bool:
        return self.flag is None and self.variable is None


@dataclass(frozen=True, kw_only=True)
class DryRun:
    variable: str = "CCVM_DRYRUN"
    value: str = "1"
    prints: DryRunStyle | None = DryRunStyle.PLAN  # None: find out from the first dry run
    argv_file: str | None = None  # scratch-dir style: where the argv lands, relative to the directory
    argv_format: ArgvFormat = ArgvFormat.NUL
    timeout_s: float = DEFAULT_DRYRUN_TIMEOUT_S


class Staged(enum.StrEnum):
    """Whether the launcher stages a file of the caller's home (secrets.files, config_files), as declared.
    Undeclared, nothing requires it staged, and a staged copy of a secret must be one no other user can read."""

    NEVER = "never"  # no copy of it is staged
    OWNER_ONLY = "owner-only"  # a byte-exact copy is staged, and no other user can read it
    COPY = "copy"  # a byte-exact copy is staged, in whatever mode the launcher gives it (not for a secret)


SECRET_STAGING = (Staged.NEVER, Staged.OWNER_ONLY)


@dataclass(frozen=True, kw_only=True)
class Secrets:
    files: tuple[str, ...] = ("~/.claude/.credentials.json",)  # ~ is the caller's HOME
    variables: tuple[str, ...] = ("ANTHROPIC_API_KEY",)


@dataclass(frozen=True, kw_only=True)
class Launcher:
    name: str
    argv: tuple[str, ...]
    embedded: bool = False  # ccvm's own `ccvm vm` (argv is symbolic)
    declared: bool = False  # read from matrix/launcher.yaml
    program: tuple[str, ...] = ()  # words the launcher needs before the arguments under test
    env: dict[str, str] = field(default_factory=dict)  # values may hold {arch}, {accel}, {machine}
    build: tuple[BuildStep, ...] = ()
    share_modes: tuple[ShareSwitch, ...] = ()
    dry_run: DryRun = field(default_factory=DryRun)
    secrets: Secrets = field(default_factory=Secrets)
    config_files: tuple[str, ...] = ("~/.claude/settings.json",)
    staged: dict[str, Staged] = field(default_factory=dict)  # per ~/ path of secrets.files and config_files
    host_scripts: tuple[str, ...] = ()
    launcher_variable: str = "CCVM"  # host scripts find the launcher's path in it
    boot: BootDeclaration = field(default_factory=BootDeclaration)
    guest_assets: str = "none"  # one of GUEST_ASSET_MODES
    source: Path | None = None  # the declaration file
    argv_line: int | None = None

    @property
    def uses_ccvm_guest(self) -> bool:
        """Whether its boots run ccvm's embedded guest (kernel and initramfs)."""
        return self.embedded or self.guest_assets == "env"

    def cell_env(self, *, arch: str, accel: str, machine: str) -> dict[str, str]:
        """The launcher's environment for one cell, placeholders filled in."""
        cell = {"arch": str(arch), "accel": str(accel), "machine": str(machine)}
        return {name: template.format_map(cell) for name, template in self.env.items()}

    def staging(self, tilde_path: str) -> Staged | None:
        """What the declaration says about staging this file; None: undeclared."""
        return self.staged.get(tilde_path)

    def share_switch(self, mode: str) -> ShareSwitch | None:
        return next((switch for switch in self.share_modes if switch.mode == mode), None)

    def build_for(self, system: str) -> BuildStep | None:
        return next((step for step in self.build if step.system == system), None)

    def where(self) -> str:
        """file:line of the argv, for errors about the launcher itself."""
        if self.source is None:
            return "--wrapper" if not self.embedded else "ccvm vm"
        return f"{self.source}:{self.argv_line}" if self.argv_line else str(self.source)

    def with_argv(self, argv: tuple[str, ...]) -> Launcher:
        return dataclasses.replace(self, argv=argv, embedded=False, argv_line=None)


def _template(doc: Mapping, name: str, value: str) -> str:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as exc:
        raise doc.error(name, f"env.{name}: {exc}; write a literal brace as {{{{ or }}}}") from None
    for placeholder in fields:
        if placeholder not in PLACEHOLDERS:
            hint = suggestion(placeholder, list(PLACEHOLDERS))
            raise doc.error(
                name, f"env.{name}: unknown placeholder {{{placeholder}}}{hint}; use {{arch}}, {{accel}}, {{machine}}"
            )
    return value


def _env(doc: Mapping) -> dict[str, str]:
    mapping = expect_mapping(doc["env"], doc.path, doc.line_of("env"), "env")
    found = values.string_map(doc, "env")
    for name, value in found.items():
        if not name.isidentifier() or not name.isascii():
            raise mapping.error(name, f"env: {name!r} is not an environment variable name")
        _template(mapping, name, value)
    return found


def _build(doc: Mapping) -> tuple[BuildStep, ...]:
    systems = expect_mapping(doc["build"], doc.path, doc.line_of("build"), "build")
    steps = []
    for system in systems:
        if not _NIX_SYSTEM.match(str(system)):
            raise systems.error(system, f"build: {system!r} is not a Nix system such as x86_64-linux")
        step = expect_mapping(systems[system], systems.path, systems.line_of(system), f"build.{system}")
        step.reject_unknown_keys(["flake", "command"], f"build.{system}")
        if ("flake" in step) == ("command" in step):
            raise step.error(None, f"build.{system} needs exactly one of `flake` (an installable) or `command`")
        if "flake" in step:
            steps.append(BuildStep(system=str(system), flake=values.text(step, "flake")))
        else:
            steps.append(BuildStep(system=str(system), command=values.words(step, "command", allow_empty=False)))
    return tuple(steps)


def _share(doc: Mapping) -> tuple[ShareSwitch, ...]:
    modes = expect_mapping(doc["share"], doc.path, doc.line_of("share"), "share")
    modes.reject_unknown_keys(list(SHARE_MODES), "share")
    switches = []
    for mode in modes:
        entry = expect_mapping(modes[mode], modes.path, modes.line_of(mode), f"share.{mode}")
        entry.reject_unknown_keys(["default", "flag", "variable", "value"], f"share.{mode}")
        is_default = entry.get("default") is True
        if "default" in entry and not isinstance(entry["default"], bool):
            raise entry.error("default", "default must be true or false")
        switch = ShareSwitch(
            mode=str(mode),
            flag=values.text(entry, "flag") if "flag" in entry else None,
            variable=values.env_name(entry, "variable") if "variable" in entry else None,
            value=values.text(entry, "value") if "value" in entry else "1",
        )
        if is_default != switch.is_default:
            raise entry.error(
                None,
                f"share.{mode}: write `default: true` for the mode used with no switch, else a `flag` or `variable`",
            )
        switches.append(switch)
    if sum(s.is_default for s in switches) > 1:
        raise modes.error(None, "share: only one mode can be the default")
    return tuple(switches)


def _dry_run(doc: Mapping) -> DryRun:
    hook = expect_mapping(doc["dry_run"], doc.path, doc.line_of("dry_run"), "dry_run")
    hook.reject_unknown_keys(["variable", "value", "prints", "argv_file", "argv_format", "timeout"], "dry_run")
    defaults = DryRun()
    prints = values.choice(hook, "prints", tuple(DryRunStyle)) if "prints" in hook else None
    argv_file = values.text(hook, "argv_file") if "argv_file" in hook else None
    if argv_file is not None and (argv_file.startswith("/") or ".." in Path(argv_file).parts):
        raise hook.error("argv_file", "argv_file is a path inside the scratch directory (relative, no '..')")
    if argv_file is not None and prints == DryRunStyle.PLAN:
        raise hook.error("argv_file", "argv_file goes with prints: scratch-dir; a plan carries guest_argv itself")
    return DryRun(
        variable=values.env_name(hook, "variable") if "variable" in hook else defaults.variable,
        value=values.text(hook, "value") if "value" in hook else defaults.value,
        prints=DryRunStyle(prints) if prints else None,
        argv_file=argv_file,
        argv_format=ArgvFormat(values.choice(hook, "argv_format", tuple(ArgvFormat)))
        if "argv_format" in hook
        else defaults.argv_format,
        timeout_s=values.seconds(hook, "timeout", MAX_DRYRUN_TIMEOUT_S) if "timeout" in hook else defaults.timeout_s,
    )


def _home_path(path: str, where: Path, line: int, key: str) -> str:
    if not path.startswith("~/") or ".." in Path(path).parts:
        raise ConfigError(where, line, f"{key}: {path!r} must be a path under the home directory, written ~/...")
    return path


def _home_entry(item: object, where: Path, line: int, key: str, allowed: tuple[Staged, ...]):
    """One item of secrets.files or config_files: a ~/ path, or {path: ~/..., staged: never|...}."""
    if isinstance(item, str):
        return _home_path(item, where, line, key), None
    entry = expect_mapping(item, where, line, f"an item of {key}")
    entry.reject_unknown_keys(["path", "staged"], f"an item of {key}")
    if "path" not in entry:
        raise entry.error(None, f"an item of {key} needs `path`: the file, written ~/...")
    path = _home_path(values.text(entry, "path"), where, entry.line_of("path"), key)
    if "staged" not in entry:
        return path, None
    staged = Staged(values.choice(entry, "staged", tuple(Staged)))
    if staged not in allowed:
        choices = " or ".join(str(s) for s in allowed)
        raise entry.error("staged", f"{key}: {path} is a secret, and a copy others can read leaks it; write {choices}")
    return path, staged


def _home_paths(doc: Mapping, key: str, allowed: tuple[Staged, ...]) -> tuple[tuple[str, ...], dict[str, Staged]]:
    """A list of ~/ paths, each a string or {path, staged}; and what each declares about its staging."""
    items = doc[key]
    if isinstance(items, str):
        pairs = [(items, doc.line_of(key))]
    elif isinstance(items, Sequence):
        pairs = [(item, items.line_of(index)) for index, item in enumerate(items)]
    else:
        raise doc.error(key, f"{key} must be a list of ~/ paths (or {{path: ~/..., staged: ...}} items)")
    paths, staged = [], {}
    for item, line in pairs:
        path, how = _home_entry(item, doc.path, line, key, allowed)
        paths.append(path)
        if how is not None:
            staged[path] = how
    return tuple(paths), staged


def _secrets(doc: Mapping) -> tuple[Secrets, dict[str, Staged]]:
    where = expect_mapping(doc["secrets"], doc.path, doc.line_of("secrets"), "secrets")
    where.reject_unknown_keys(["files", "env"], "secrets")
    defaults = Secrets()
    variables = values.words(where, "env") if "env" in where else defaults.variables
    for name in variables:
        if not name.isidentifier():
            raise where.error("env", f"secrets.env: {name!r} is not an environment variable name")
    files, staged = _home_paths(where, "files", SECRET_STAGING) if "files" in where else (defaults.files, {})
    return Secrets(files=files, variables=variables), staged


def _scripts(doc: Mapping) -> tuple[str, ...]:
    scripts = values.words(doc, "host_scripts")
    for script in scripts:
        if script.startswith("/") or ".." in Path(script).parts:
            raise doc.error("host_scripts", f"host_scripts: {script!r} must be relative to the project root")
    return scripts


def parse_launcher_file(doc: Mapping) -> Launcher:
    doc.reject_unknown_keys(TOP_KEYS, FILE)
    if "argv" not in doc:
        raise doc.error(
            None, "launcher.yaml needs `argv`: the command that starts the launcher, e.g. [./result/bin/ccvm]"
        )
    share = _share(doc) if "share" in doc else ()
    argv = values.words(doc, "argv", allow_empty=False)
    secrets, secrets_staged = _secrets(doc) if "secrets" in doc else (Secrets(), {})
    if "config_files" in doc:
        config_files, config_staged = _home_paths(doc, "config_files", tuple(Staged))
        both = sorted(set(secrets.files) & set(config_files))
        if both:
            raise doc.error("config_files", f"config_files: {both[0]} is in secrets.files too; list it there only")
    else:  # the default, less any file declared a secret
        config_files, config_staged = tuple(p for p in Launcher.config_files if p not in secrets.files), {}
    return Launcher(
        name=values.text(doc, "name") if "name" in doc else Path(argv[0]).name,
        argv=argv,
        declared=True,
        program=values.words(doc, "program") if "program" in doc else (),
        env=_env(doc) if "env" in doc else {},
        build=_build(doc) if "build" in doc else (),
        share_modes=share,
        dry_run=_dry_run(doc) if "dry_run" in doc else dataclasses.replace(DryRun(), prints=None),
        secrets=secrets,
        config_files=config_files,
        staged={**config_staged, **secrets_staged},
        host_scripts=_scripts(doc) if "host_scripts" in doc else (),
        launcher_variable=values.env_name(doc, "launcher_variable") if "launcher_variable" in doc else "CCVM",
        boot=_boot(doc, share),
        guest_assets=values.choice(doc, "guest_assets", GUEST_ASSET_MODES) if "guest_assets" in doc else "none",
        source=doc.path,
        argv_line=doc.line_of("argv"),
    )


def _boot(doc: Mapping, share: tuple[ShareSwitch, ...]) -> BootDeclaration:
    if "boot" not in doc:
        return BootDeclaration()
    if not share:
        raise doc.error("boot", "boot scenarios name share modes: declare them under `share` first")
    boot = expect_mapping(doc["boot"], doc.path, doc.line_of("boot"), "boot")
    return parse_boot_declaration(boot, tuple(s.mode for s in share))


def load_launcher(root: Path) -> Launcher | None:
    """The declaration in ``root/launcher.yaml``, or None when there is none."""
    path = root / FILE
    if not path.is_file():
        return None
    doc = expect_mapping(load_yaml(path), path, 1, FILE)
    if not doc:
        raise ConfigError(path, 1, "launcher.yaml is empty; declare at least `argv`, or remove the file")
    return parse_launcher_file(doc)
