"""The project's launcher, and what each of its test scripts is.

The launcher is the script or source file that reads a dry-run variable
(``CCVM_DRYRUN``, or any ``*_DRYRUN`` it tests): a file outside the tests
that expands it (``${X_DRYRUN:-0}``, ``os.environ.get("X_DRYRUN")``).  When
a flake package installs it (a Nix file of the project refers to the script
and names the program it installs, and the flake has a package of that name
or one defined from that Nix file), it is declared as that package's
``./result/bin/NAME``, built with ``nix build .#PACKAGE``; else as the script
itself.

Each shell script under tests/ (or test/) is one of:

- ``boot``: it builds or boots a VM (a ``qemu-system-*`` call, a ``nix build``
  of a VM or a guest, a header that says it boots one); never a host test;
- ``stub``: the flake bakes it as a program (``writeShellScriptBin "NAME"
  (readFile ./x.sh)``): the guest's program, not a test;
- ``flake-check``: it requires a variable nothing but the flake's checks set
  (``: "${VAR:?}"``, or one the check that runs it exports): it runs only
  through ``nix flake check``;
- ``host``: it runs the launcher through its dry-run hook, or ``$CCVM``;
- ``other``: none of these; not wired anywhere.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ccvm.adopt.flake import FlakeFacts
from ccvm.adopt.nixexpr import NixSyntaxError, tokenize
from ccvm.matrix.builds import SYSTEMS

TEST_DIRS = ("tests", "test")
HOST_VARIABLE = "CCVM"  # what ccvm host sets to the launcher for a host script
_READ_SHELL = re.compile(r"\$\{?!?([A-Za-z_][A-Za-z0-9_]*_DRYRUN)\b")
_READ_PYTHON = re.compile(r"""(?:environ(?:\.get)?\s*[\(\[]|getenv\s*\()\s*["']([A-Za-z_][A-Za-z0-9_]*_DRYRUN)["']""")
_SET = re.compile(r"(?:^|[\s;&|(])(?:export\s+)?([A-Z_][A-Z0-9_]*_DRYRUN)=", re.MULTILINE)
_USES_CCVM = re.compile(r"\$\{?CCVM\b(?![A-Za-z0-9_])")
_REQUIRED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")
_COMMAND_START = r"(?:^|[;&|({]|\$\(|\bthen\b|\bdo\b|\belse\b|\bexec\b|\btime\b|\bsudo\b)\s*"
_QEMU_CALL = re.compile(_COMMAND_START + r"""["']?[^\s"']*qemu-system-[\w.-]+""", re.MULTILINE)
_NIX_BUILD_VM = re.compile(
    _COMMAND_START + r"nix(?:-build|\s+build|\s+run)\b[^\n]*\b(?:vm|vms|guest|boot|nixos|toplevel)\b"
)
_RUN_VM = re.compile(_COMMAND_START + r"""["']?\S*/bin/(?:run-\S+-vm|microvm-run)\b""", re.MULTILINE)
_BOOT_WORDS = re.compile(r"full[- ]boot|\bboots?\b|\bbooting\b", re.IGNORECASE)
_VM_WORDS = re.compile(r"\b(?:vm|vms|guest|machine|qemu|microvm)\b|full[- ]boot", re.IGNORECASE)
_NOT_BOOT = re.compile(r"\b(?:no|not|never|without|before|instead of|rather than|skips?)\b", re.IGNORECASE)
_PROGRAM = re.compile(
    r"\b(?:writeShellScriptBin|writeScriptBin|writeShellScript|writeScript|writeShellApplication|"
    r"writers\.\w+|readFile)\b"
)
_INSTALLS = (
    re.compile(r'\bwrite(?:Shell)?Script(?:Bin)?\s+"([\w.+-]+)"'),
    re.compile(r'\bwriteShellApplication\s*\{[^{}]*?\bname\s*=\s*"([\w.+-]+)"', re.DOTALL),
    re.compile(r'\bmainProgram\s*=\s*"([\w.+-]+)"'),
    re.compile(r"\$out/bin/([\w.+-]+)"),
)
_ASSIGNED = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)


class Kind(enum.StrEnum):
    HOST = "host"
    BOOT = "boot"
    STUB = "stub"
    FLAKE_CHECK = "flake-check"
    OTHER = "other"


@dataclass(frozen=True, kw_only=True)
class Script:
    path: str
    kind: Kind
    why: str


@dataclass(frozen=True, kw_only=True)
class FoundLauncher:
    source: str  # the file that reads the dry-run variable
    variable: str
    argv: tuple[str, ...]
    package: str = ""  # the flake package that installs it ("" when it runs as it is)
    systems: tuple[str, ...] = ()  # where that package is built
    how: str = ""  # what was guessed, one line
    others: tuple[str, ...] = ()  # other files that read a dry-run variable


def _read(root: Path, relpath: str) -> str:
    try:
        return (root / relpath).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _code(text: str) -> str:
    """Shell or Nix text without its comments (a # at the start of a word to the line's end)."""
    return re.sub(r"(?m)(^|\s)#[^\n]*", r"\1", text)


def _in_tests(relpath: str) -> bool:
    return PurePosixPath(relpath).parts[0] in TEST_DIRS


def dry_run_reads(text: str, *, python: bool = False) -> list[str]:
    """The *_DRYRUN variables a file reads (CCVM_DRYRUN first)."""
    found = (_READ_PYTHON if python else _READ_SHELL).findall(text if python else _code(text))
    return sorted(dict.fromkeys(found), key=lambda name: (name != "CCVM_DRYRUN", name))


# -- Nix files that refer to a file -----------------------------------------------


@dataclass(frozen=True)
class _Reference:
    nix: str  # the Nix file
    string: str  # the text of the string the reference sits in ('' when it is not in a string)
    context: str  # the Nix text just before the reference


def _references(root: Path, nix_files: tuple[str, ...], target: str) -> list[_Reference]:
    """Where a Nix file of the project names ``target`` by a path literal."""
    found = []
    want = os.path.normpath(target)
    for nix in nix_files:
        text = _read(root, nix)
        if PurePosixPath(target).name not in text:
            continue
        try:
            tokens = tokenize(text)
        except NixSyntaxError:
            continue
        strings: list[int] = []  # where the strings around here open
        spans: dict[int, int] = {}
        refs: list[tuple[int, int | None]] = []
        for token in tokens:
            if token.kind == "STR_OPEN":
                strings.append(token.start)
            elif token.kind == "STR_CLOSE" and strings:
                spans[strings.pop()] = token.end
            elif token.kind == "PATH" and not token.text.startswith(("/", "~")):
                resolved = os.path.normpath(os.path.join(os.path.dirname(nix), token.text))
                if resolved == want:
                    refs.append((token.start, strings[0] if strings else None))
        for start, string in refs:
            inside = text[string : spans.get(string, len(text))] if string is not None else ""
            found.append(_Reference(nix, inside, text[max(0, start - 200) : start]))
    return found


def _installed_name(root: Path, nix: str) -> str:
    text = _code(_read(root, nix))
    for pattern in _INSTALLS:
        found = pattern.search(text)
        if found:
            return found.group(1)
    return ""


# -- the launcher ---------------------------------------------------------------


def _package_for(root: Path, source: str, nix_files: tuple[str, ...], flake: FlakeFacts | None) -> tuple[str, str, str]:
    """(package, program name, the Nix file) of the flake package that installs ``source``, or empties."""
    if flake is None:
        return "", "", ""
    holders = [source] if source.endswith(".nix") else [ref.nix for ref in _references(root, nix_files, source)]
    packages = [name for system in flake.ccvm_systems for name in flake.packages.get(system, ())]
    packages = list(dict.fromkeys(packages))
    for nix in dict.fromkeys(holders):
        program = _installed_name(root, nix)
        if not program:
            continue
        if program in packages:
            return program, program, nix
        relative = os.path.relpath(nix, ".")
        for name in sorted(packages, key=lambda n: n == "default"):
            text = flake.package_text.get(name, "")
            if f"./{relative}" in text or (nix == "flake.nix" and program in text):
                return name, program, nix
    return "", "", ""


def find_launcher(
    root: Path,
    *,
    shell: tuple[str, ...],
    nix: tuple[str, ...],
    python: tuple[str, ...],
    flake: FlakeFacts | None,
) -> FoundLauncher | None:
    candidates: list[tuple[str, str]] = []  # (file, variable)
    for group, is_python in ((shell, False), (python, True), (nix, False)):
        for relpath in group:
            if _in_tests(relpath):
                continue
            reads = dry_run_reads(_read(root, relpath), python=is_python)
            if reads:
                candidates.append((relpath, reads[0]))
    if not candidates:
        return None
    candidates.sort(key=lambda item: item[1] != "CCVM_DRYRUN")  # stable: shell, then Python, then Nix
    source, variable = candidates[0]
    others = tuple(f"{path} ({name})" for path, name in candidates[1:])
    package, program, holder = _package_for(root, source, nix, flake)
    if package:
        systems = tuple(s for s in (flake.ccvm_systems if flake else ()) if package in flake.packages.get(s, ()))
        how = (
            f"{source} reads {variable}: the launcher is ./result/bin/{program} of the flake package {package} "
            f"({holder} installs it), built with nix build .#{package}"
        )
        return FoundLauncher(
            source=source,
            variable=variable,
            argv=(f"./result/bin/{program}",),
            package=package,
            systems=systems or tuple(s for s in SYSTEMS if flake and s in flake.ccvm_systems),
            how=how,
            others=others,
        )
    if source.endswith(".nix"):
        return FoundLauncher(
            source=source,
            variable=variable,
            argv=(),
            how=f"{source} reads {variable}, but no flake package that installs it was found",
            others=others,
        )
    executable = os.access(root / source, os.X_OK)
    argv = (source if "/" in source else f"./{source}",) if executable else ("bash", source)
    how = (
        f"{source} reads {variable}: the launcher is the script itself ({' '.join(argv)}); no flake package installs it"
    )
    return FoundLauncher(source=source, variable=variable, argv=argv, how=how, others=others)


# -- the test scripts ------------------------------------------------------------


def _header(text: str) -> list[str]:
    """The comment lines at the top of a script (after its shebang)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("#!") and not lines:
            continue
        if not line.strip().startswith("#"):
            if line.strip():
                break
            continue
        lines.append(line.strip().lstrip("#").strip())
    return lines


def _boot_reason(text: str) -> str:
    code = _code(text)
    if _QEMU_CALL.search(code):
        return "it calls qemu-system-*"
    if _NIX_BUILD_VM.search(code):
        return "it builds a VM or guest with nix"
    if _RUN_VM.search(code):
        return "it runs a VM runner"
    for line in _header(text):
        if _BOOT_WORDS.search(line) and _VM_WORDS.search(line) and not _NOT_BOOT.search(line):
            return f"its header says so ({line[:60]})"
    return ""


def classify(
    root: Path, scripts: tuple[str, ...], *, nix: tuple[str, ...], launcher: FoundLauncher | None, variable: str
) -> tuple[Script, ...]:
    """Each test script's kind (the launcher's own file is not a test)."""
    found = []
    for path in scripts:
        if launcher is not None and path == launcher.source:
            continue
        text = _read(root, path)
        code = _code(text)
        refs = _references(root, nix, path)
        boot = _boot_reason(text)
        runs_launcher = bool(_USES_CCVM.search(code)) or variable in _SET.findall(code)
        if boot:
            found.append(Script(path=path, kind=Kind.BOOT, why=boot))
            continue
        baked = [ref for ref in refs if _PROGRAM.search(ref.context[-80:])]
        if baked and not runs_launcher:
            found.append(Script(path=path, kind=Kind.STUB, why=f"{baked[0].nix} bakes it as a program"))
            continue
        required = [name for name in dict.fromkeys(_REQUIRED.findall(code)) if name != HOST_VARIABLE]
        set_by_checks = {
            name: ref.nix
            for ref in refs
            for name in _ASSIGNED.findall(ref.string)
            if name != HOST_VARIABLE and re.search(rf"\$\{{?{name}\b", code)
        }
        if required or set_by_checks:
            names = list(dict.fromkeys([*required, *set_by_checks]))
            where = f" ({', '.join(sorted(set(set_by_checks.values())))} sets it)" if set_by_checks else ""
            why = f"it needs {', '.join(names)}, which only the flake's checks set{where}"
            found.append(Script(path=path, kind=Kind.FLAKE_CHECK, why=why))
            continue
        if runs_launcher:
            how = f"it runs ${HOST_VARIABLE}" if _USES_CCVM.search(code) else f"it sets {variable}"
            found.append(Script(path=path, kind=Kind.HOST, why=how))
            continue
        found.append(Script(path=path, kind=Kind.OTHER, why="it runs neither the launcher nor a VM"))
    return tuple(found)


def candidate_scripts(shell: tuple[str, ...]) -> tuple[str, ...]:
    """Shell scripts directly under tests/ or test/."""
    return tuple(path for path in shell if _in_tests(path) and path.count("/") == 1)
