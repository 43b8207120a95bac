"""The `uses:` steps a rehearsal knows, done locally instead of by the action.

checkout          the rehearsal's fresh clone of HEAD is the workspace
setup-python      the host's python3; the version asked for is noted
install-nix-action  a nix already here (its extra_nix_config goes into NIX_CONFIG), or a clear failure
cache             a folder per key under the rehearsal directory: restored before, saved after a good job
upload-artifact   copied to REHEARSAL/artifacts/NAME
download-artifact copied back from REHEARSAL/artifacts (name or pattern)
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

from ccvm import processes
from ccvm.processes import find_program

VERSION_TIMEOUT_S = 30.0


@dataclass(frozen=True, kw_only=True)
class Emulated:
    ok: bool
    note: str
    env: dict[str, str] = field(default_factory=dict)
    post: Callable[[], str] | None = None  # run after the job's steps when the job succeeded


@dataclass(frozen=True, kw_only=True)
class Place:
    """Where an emulated step works: the workspace and the rehearsal's own folders."""

    workspace: Path
    rehearsal: Path
    env: dict[str, str]

    @property
    def artifacts(self) -> Path:
        return self.rehearsal / "artifacts"

    @property
    def caches(self) -> Path:
        return self.rehearsal / "actions-cache"


def action_name(uses: str) -> str:
    """owner/repo (or owner/repo/path) without the @ref."""
    return uses.partition("@")[0].strip()


def _paths(text: str, base: Path) -> list[Path]:
    return [
        (Path(line.strip()).expanduser() if line.strip().startswith("~") else base / line.strip())
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("!")
    ]


def checkout(inputs: dict[str, str], place: Place) -> Emulated:
    return Emulated(ok=True, note=f"the fresh clone of HEAD at {place.workspace} is the workspace")


def setup_python(inputs: dict[str, str], place: Place) -> Emulated:
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = find_program("python3", search_path=place.env.get("PATH")) or "python3"
    asked = inputs.get("python-version", "")
    note = f"host {python} (Python {host}) stands in; the workflow asks for {asked or 'the default'}"
    if asked and not (host == asked or host.startswith(f"{asked}.") or asked.startswith(f"{host}.")):
        note += " (not that version: results may differ)"
    return Emulated(ok=True, note=note)


def install_nix(inputs: dict[str, str], place: Place) -> Emulated:
    nix = find_program("nix", search_path=place.env.get("PATH"))
    if nix is None:
        return Emulated(ok=False, note="no nix here: install Nix (apt-get install nix-bin) to rehearse this job")
    version = processes.run([nix, "--version"], timeout_s=VERSION_TIMEOUT_S).stdout.strip() or "unknown version"
    extra = inputs.get("extra_nix_config", "").strip()
    env = {}
    if extra:
        env["NIX_CONFIG"] = "\n".join(part for part in (place.env.get("NIX_CONFIG", ""), extra) if part)
    note = f"{nix} ({version}) stands in; nothing installed"
    return Emulated(ok=True, note=note + ("; extra_nix_config given through NIX_CONFIG" if extra else ""), env=env)


def _copy_into(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    elif source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def cache(inputs: dict[str, str], place: Place) -> Emulated:
    key = inputs.get("key", "")
    if not key:
        return Emulated(ok=False, note="actions/cache needs a key")
    store = place.caches / hashlib.sha256(key.encode()).hexdigest()[:32]
    paths = _paths(inputs.get("path", ""), place.workspace)
    hit = store.is_dir()
    if hit:
        for index, path in enumerate(paths):
            _copy_into(store / str(index), path)

    def save() -> str:
        if store.is_dir():
            return f"cache {key}: already saved"
        for index, path in enumerate(paths):
            _copy_into(path, store / str(index))
        (store / "KEY").parent.mkdir(parents=True, exist_ok=True)
        (store / "KEY").write_text(key + "\n")
        return f"cache {key}: saved {', '.join(map(str, paths))} under {store}"

    note = f"key {key}: {'hit, restored from ' + str(store) if hit else 'miss (saved after the job if it passes)'}"
    return Emulated(ok=True, note=note, env={}, post=save)


def upload_artifact(inputs: dict[str, str], place: Place) -> Emulated:
    name = inputs.get("name", "artifact")
    target = place.artifacts / name
    found = [Path(p) for path in _paths(inputs.get("path", ""), place.workspace) for p in glob(str(path))]
    if not found:
        policy = inputs.get("if-no-files-found", "warn")
        return Emulated(ok=policy != "error", note=f"artifact {name}: no files found ({policy})")
    for path in found:
        relative = path.relative_to(place.workspace) if path.is_relative_to(place.workspace) else Path(path.name)
        _copy_into(path, target / relative)
    return Emulated(ok=True, note=f"artifact {name}: copied to {target}")


def download_artifact(inputs: dict[str, str], place: Place) -> Emulated:
    pattern = inputs.get("name") or inputs.get("pattern") or "*"
    target = place.workspace / inputs.get("path", ".")
    names = sorted(p.name for p in place.artifacts.iterdir()) if place.artifacts.is_dir() else []
    chosen = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
    for name in chosen:
        _copy_into(place.artifacts / name, target / name)
    note = f"artifacts {', '.join(chosen) or 'none'} matching {pattern!r} copied to {target}"
    return Emulated(ok=bool(chosen) or "name" not in inputs, note=note + " (only this rehearsal's own uploads)")


KNOWN: dict[str, Callable[[dict[str, str], Place], Emulated]] = {
    "actions/checkout": checkout,
    "actions/setup-python": setup_python,
    "cachix/install-nix-action": install_nix,
    "actions/cache": cache,
    "actions/upload-artifact": upload_artifact,
    "actions/download-artifact": download_artifact,
}
