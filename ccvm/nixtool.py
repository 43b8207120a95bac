"""Running Nix: finding it, its version, the flags flakes need, and what
this host can build.

ccvm leaves the user's Nix configuration alone (nix.conf, NIX_CONFIG) and
only adds ``--option NAME VALUE`` pairs given with ``--nix-option``.
Every call goes through ``Nix.run`` (``ccvm.processes.run``: own session,
hard timeout).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ccvm.errors import HostError
from ccvm.processes import Completed, find_program, run
from ccvm.text import clean_text, first_line

# Nix 2.4 introduced the nix-command and flakes experimental features.
MIN_VERSION = (2, 4)
# Current nixpkgs refuses to evaluate under an older Nix (lib/minfeatures.nix, formerly lib/minver.nix).
NIX = "nix"  # what --require and --allow-missing call it
NIXPKGS_MIN_VERSION = (2, 18)
NEWER_NIX_HINT = (
    "Debian 13's nix-bin is 2.26 (apt-get install nix-bin); elsewhere the upstream installer "
    "(https://nixos.org/download)"
)
FEATURE_FLAGS = ("--extra-experimental-features", "nix-command flakes")
QUERY_TIMEOUT_S = 120.0  # eval, show-config, path-info, log: never a long wait
CONFIG_HINT = "/etc/nix/nix.conf, ~/.config/nix/nix.conf or NIX_CONFIG"
INSTALL_HINT = "install Nix (Debian: apt-get install nix-bin) or put nix on PATH"

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_FAILED_BUILDER = re.compile(r"builder for '(/nix/store/[^']+\.drv)' failed")
_STORE_NAME = re.compile(r"^/nix/store/[0-9a-z]{32}-(.+?)(?:\.drv)?$")
_INTERNAL_LOG = re.compile(r"^@nix (\{.*\})$")
_UNTRACKED = re.compile(r"getting status of '/nix/store/[0-9a-z]{32}-source/([^']+)': No such file or directory")
_ERROR_PREFIX = re.compile(r"^(?:error(?: \(ignored\))?:\s*)+")
# nixpkgs' own version check, and a flake.lock written by a newer Nix (attributes an older one does not know).
_NIXPKGS_REFUSES = re.compile(r"This version of Nixpkgs requires[^\n']*")
_NEWER_LOCK = re.compile(r"unsupported [\w-]* ?input attribute '[^']+'|lock file '[^']*' has unsupported version \d+")


@dataclass(frozen=True, kw_only=True)
class Nix:
    path: str
    version: str
    options: tuple[tuple[str, str], ...] = ()

    def option_args(self) -> list[str]:
        return [part for name, value in self.options for part in ("--option", name, value)]

    def argv(self, *args: str) -> list[str]:
        return [self.path, *FEATURE_FLAGS, *self.option_args(), *args]

    def run(self, *args: str, timeout_s: float = QUERY_TIMEOUT_S) -> Completed:
        return run(self.argv(*args), timeout_s=timeout_s)

    def run_uncached(self, *args: str, timeout_s: float = QUERY_TIMEOUT_S) -> Completed:
        """Run without the flake evaluation cache: Nix 2.x caches a failed attribute and on
        the next run reports only "… is not a derivation", hiding the real error."""
        return run(self.argv("--option", "eval-cache", "false", *args), timeout_s=timeout_s)

    def run_store(self, *args: str, timeout_s: float = QUERY_TIMEOUT_S) -> Completed:
        """The classic nix-store next to nix: its options are stable across Nix versions."""
        return run([str(Path(self.path).with_name("nix-store")), *self.option_args(), *args], timeout_s=timeout_s)


def parse_version(text: str) -> tuple[int, ...] | None:
    """'nix (Nix) 2.8.0' -> (2, 8, 0); None when no version is in the text."""
    match = _VERSION.search(text)
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def _version_text(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def older_than_nixpkgs_needs(version: str) -> bool:
    """Whether this Nix ('nix (Nix) 2.8.0') is too old to evaluate current nixpkgs."""
    parsed = parse_version(version)
    return parsed is not None and parsed[:2] < NIXPKGS_MIN_VERSION


def nixpkgs_note(version: str) -> str | None:
    """One line saying this Nix is too old for current nixpkgs, and how to get a newer one; None when it is not."""
    if not older_than_nixpkgs_needs(version):
        return None
    need = _version_text(NIXPKGS_MIN_VERSION)
    return (
        f"{version} is older than {need}, which current nixpkgs needs (flakes that follow nixos-unstable "
        f"do not evaluate with it); get Nix {need} or newer: {NEWER_NIX_HINT}"
    )


def needs_newer_nix(version: str, text: str) -> str | None:
    """When Nix's error output says this Nix is too old, one line saying so (not a build or evaluation failure).

    Two causes: nixpkgs' own version check ("This version of Nixpkgs requires ..."), and a flake.lock
    written by a newer Nix ("unsupported tarball input attribute 'lastModified'").
    """
    need = _version_text(NIXPKGS_MIN_VERSION)
    plain = clean_text(text)
    refused = _NIXPKGS_REFUSES.search(plain)
    if refused:
        return (
            f"{version} cannot evaluate this nixpkgs ({refused.group(0).rstrip(' :,')}): current nixpkgs needs "
            f"Nix {need} or newer; get one: {NEWER_NIX_HINT}"
        )
    lock = _NEWER_LOCK.search(plain)
    if lock and older_than_nixpkgs_needs(version):
        return (
            f"{version} cannot read this flake.lock, written by a newer Nix ({lock.group(0)}); current nixpkgs "
            f"needs Nix {need} or newer; get one: {NEWER_NIX_HINT}"
        )
    return None


def version_lines(nix: Nix | None) -> list[str]:
    """What the Nix preflight says of the Nix it found: its version and path, and the nixpkgs note
    (nothing without a Nix)."""
    if nix is None:
        return []
    note = nixpkgs_note(nix.version)
    return [f"{nix.version} ({nix.path})", *([note] if note else [])]


def find_nix(options: tuple[tuple[str, str], ...] = ()) -> Nix | None:
    """The nix on PATH (or $CCVM_NIX), or None when there is none.

    A nix too old for flakes is a HostError: it is there but cannot work.
    """
    path = os.environ.get("CCVM_NIX") or find_program("nix", path_only=True)
    if not path or not Path(path).is_file():
        return None
    result = run([path, "--version"], timeout_s=30)
    if not result.ok:
        why = first_line(result.stderr) or f"exit status {result.returncode}"
        if "configuration" in why or "setting" in why or "included from" in why:
            raise HostError(f"nix rejects its configuration: {why}; fix it ({CONFIG_HINT})")
        raise HostError(f"{path} --version failed: {why}")
    version = result.stdout.strip().splitlines()[0] if result.stdout.strip() else "unknown"
    parsed = parse_version(version)
    if parsed is None or parsed[:2] < MIN_VERSION:
        raise HostError(f"{version} is too old for flakes; ccvm needs Nix {'.'.join(map(str, MIN_VERSION))} or newer")
    return Nix(path=path, version=version, options=options)


def missing_reason() -> str:
    return f"nix not found ({INSTALL_HINT})"


@dataclass(frozen=True, kw_only=True)
class HostPlatforms:
    """The systems this Nix can build, locally or through remote builders."""

    system: str
    extra_platforms: tuple[str, ...]
    remote: tuple[str, ...]  # systems some configured remote builder accepts

    def can_build(self, system: str) -> bool:
        return system == self.system or system in self.extra_platforms or system in self.remote

    def why_not(self, system: str) -> str:
        local = " ".join([self.system, *self.extra_platforms])
        remote = f", remote builders {' '.join(self.remote)}" if self.remote else ""
        return (
            f"cannot build {system} here (local: {local}{remote}); "
            f"add a remote builder for {system} (nix.conf `builders`) or {system} to `extra-platforms` (binfmt)"
        )


def setting(config: dict, name: str) -> object:
    entry = config.get(name, {})
    return entry.get("value") if isinstance(entry, dict) else entry


def _as_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value or "").split()


def builder_systems(spec: str) -> tuple[str, ...]:
    """Systems named in a `builders` value: entries split by ';' or newlines,
    '@FILE' read from FILE, the second field of each entry a comma list."""
    systems: list[str] = []
    for entry in re.split(r"[;\n]", spec):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith("@"):
            try:
                text = Path(entry[1:]).read_text(encoding="utf-8")
            except OSError:
                continue  # Nix ignores a missing machines file too
            systems.extend(builder_systems(text))
            continue
        fields = entry.split()
        if len(fields) >= 2 and fields[1] != "-":
            systems.extend(s for s in fields[1].split(",") if s)
    return tuple(dict.fromkeys(systems))


def show_config(nix: Nix) -> dict:
    """Nix's effective settings (`nix show-config --json`)."""
    result = nix.run("show-config", "--json")
    if not result.ok:
        raise HostError(f"nix show-config failed: {first_line(result.stderr) or result.returncode}")
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise HostError(f"nix show-config --json printed something that is not JSON: {exc}") from None


def host_platforms(nix: Nix) -> HostPlatforms:
    config = show_config(nix)
    system = str(setting(config, "system") or "")
    return HostPlatforms(
        system=system,
        extra_platforms=tuple(p for p in _as_list(setting(config, "extra-platforms")) if p != system),
        remote=builder_systems(str(setting(config, "builders") or "")),
    )


def failed_derivations(text: str) -> list[str]:
    """The .drv paths named in Nix's `builder for '….drv' failed` lines, in order."""
    return list(dict.fromkeys(_FAILED_BUILDER.findall(text)))


def store_name(path: str) -> str:
    """'/nix/store/<hash>-hello-1.0.drv' -> 'hello-1.0'."""
    match = _STORE_NAME.match(path)
    return match.group(1) if match else path


def _readable_log_line(line: str) -> str | None:
    """Builtin builders write '@nix {json}' lines; keep only their messages."""
    match = _INTERNAL_LOG.match(line)
    if not match:
        return line
    try:
        event = json.loads(match.group(1))
    except json.JSONDecodeError:
        return line
    return event.get("msg") if event.get("action") == "msg" else None


def log_tail(nix: Nix, drv: str, lines: int = 40) -> str:
    """The last lines of a derivation's build log (`nix log`), or why there is none."""
    result = nix.run("log", drv)
    if not result.ok:
        return f"(no build log for {drv}: {first_line(result.stderr) or 'nix log failed'})"
    kept = [text for line in result.stdout.splitlines() if (text := _readable_log_line(line)) is not None]
    return "\n".join(kept[-lines:])


def valid_paths(nix: Nix, paths: list[str]) -> set[str]:
    """Those of the store paths that exist (are valid) in the store."""
    if not paths:
        return set()
    result = nix.run("path-info", "--json", *paths)
    try:
        entries = json.loads(result.stdout) if result.ok else []
    except json.JSONDecodeError:
        entries = []
    return {entry["path"] for entry in entries if entry.get("valid", True) and "path" in entry}


def error_text(text: str, limit: int = 60) -> str:
    """Nix's error output without progress noise, for a failure's details."""
    noise = ("warning: unable to download", "evaluating ", "copying ", "building '", "running flake checks")
    kept = [line for line in text.splitlines() if not line.strip().startswith(noise)]
    return "\n".join(kept[-limit:]).strip()


def error_summary(text: str) -> str:
    """The one line that says what went wrong: the first 'error:' line, with a hint when we know one."""
    summary = first_line(clean_text(text))
    for line in text.splitlines():
        stripped = clean_text(line).strip()
        if stripped.startswith("error"):
            summary = _ERROR_PREFIX.sub("", stripped) or stripped
            break
    untracked = _UNTRACKED.search(summary)
    if untracked:
        summary += f" (a git flake sees only tracked files: git add {untracked.group(1)})"
    return summary
