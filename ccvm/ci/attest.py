"""Human attestations: a person's word that they checked what cannot be
automated, tied to the exact tree they checked.

An attestation records who (git config user.name and user.email), when,
their note and the hash of the working tree's content (``gitchange.
tree_hash``).  It lives in the repository's git directory,
``<git-dir>/ccvm/attestations/<kind>/<tree>.json``, so it is never
committed, and it is current only while the tree hashes the same: any
edit makes it stale.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ccvm.ci import gitchange
from ccvm.errors import UsageError
from ccvm.files import write_atomic
from ccvm.git import git

# kind -> what the person does before attesting
KINDS: dict[str, str] = {
    "tty": "run `ccvm vm --shell`, resize the terminal window, use vim, less and the shell's vi mode (set -o vi)",
}


@dataclass(frozen=True, kw_only=True)
class Attestation:
    kind: str
    tree: str
    name: str
    email: str
    at: str  # ISO 8601, UTC
    note: str


def attestation_dir(root: Path, kind: str) -> Path:
    return gitchange.git_dir(root) / "ccvm" / "attestations" / kind


def _identity(root: Path, key: str) -> str:
    value = git(root, "config", "--get", key).stdout.strip()
    if not value:
        raise UsageError(f"git config {key} is not set; set it first: git config {key} 'Your {key.split('.')[1]}'")
    return value


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UsageError(f"unknown attestation {kind!r}; known: {', '.join(KINDS)}")


def record(root: Path, kind: str, note: str, *, tree: str | None = None) -> tuple[Attestation, Path]:
    """Record an attestation for the working tree as it is now."""
    _check_kind(kind)
    if not note.strip():
        raise UsageError('--note must say what you checked, e.g. --note "resized, vim, less, vi-mode: fine"')
    attestation = Attestation(
        kind=kind,
        tree=tree or gitchange.tree_hash(root),
        name=_identity(root, "user.name"),
        email=_identity(root, "user.email"),
        at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        note=note.strip(),
    )
    path = attestation_dir(root, kind) / f"{attestation.tree}.json"
    write_atomic(path, (json.dumps(asdict(attestation), indent=2) + "\n").encode("utf-8"))
    return attestation, path


def _read(path: Path) -> Attestation | None:
    try:
        return Attestation(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # unreadable or from another version: as good as absent


def current(root: Path, kind: str, tree: str) -> Attestation | None:
    """The attestation made on exactly this tree, if any."""
    _check_kind(kind)
    found = _read(attestation_dir(root, kind) / f"{tree}.json")
    return found if found and found.tree == tree and found.kind == kind else None


def latest(root: Path, kind: str) -> Attestation | None:
    """The most recent attestation of this kind, whatever tree it was made on."""
    _check_kind(kind)
    directory = attestation_dir(root, kind)
    found = [a for a in (_read(p) for p in sorted(directory.glob("*.json"))) if a] if directory.is_dir() else []
    return max(found, key=lambda a: a.at, default=None)


# -- automated checks beside the person's word --------------------------------------------------

AUTOMATED = {"tty": "ccvm attest tty --auto"}  # kind -> the command that runs the machine's part


@dataclass(frozen=True, kw_only=True)
class AutomatedRun:
    """The machine's part of a kind (``ccvm attest tty --auto``) on one tree: it never
    replaces a person's attestation, it stands beside it in the gate."""

    kind: str
    tree: str
    at: str  # ISO 8601, UTC
    passed: bool
    cells: tuple[str, ...]  # the cells it ran on (skipped cells are not among them)
    cases: int
    failed: tuple[str, ...] = ()  # suite/case of each failure

    def summary(self) -> str:
        where = ", ".join(self.cells) or "no cell"
        if self.passed:
            return f"the automated check passed ({self.cases} cases on {where}) at {self.at}"
        return f"the automated check FAILED at {self.at}: {', '.join(self.failed[:3])}"


def automated_dir(root: Path, kind: str) -> Path:
    return gitchange.git_dir(root) / "ccvm" / "attestations" / f"{kind}.auto"


def record_automated(
    root: Path, kind: str, *, passed: bool, cells: tuple[str, ...], cases: int, failed: tuple[str, ...]
) -> tuple[AutomatedRun, Path]:
    """Record the automated check's result for the working tree as it is now."""
    _check_kind(kind)
    run = AutomatedRun(
        kind=kind,
        tree=gitchange.tree_hash(root),
        at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        passed=passed,
        cells=cells,
        cases=cases,
        failed=failed,
    )
    path = automated_dir(root, kind) / f"{run.tree}.json"
    write_atomic(path, (json.dumps(asdict(run), indent=2) + "\n").encode("utf-8"))
    return run, path


def current_automated(root: Path, kind: str, tree: str) -> AutomatedRun | None:
    """The automated check's result on exactly this tree, if it ran on it."""
    _check_kind(kind)
    path = automated_dir(root, kind) / f"{tree}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        found = AutomatedRun(**{**raw, "cells": tuple(raw["cells"]), "failed": tuple(raw.get("failed", ()))})
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return found if found.tree == tree and found.kind == kind else None
