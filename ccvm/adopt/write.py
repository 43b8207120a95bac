"""Write what render.py made, and the generated files, into the project.

Nothing the project already has of its own is changed.  A file init wrote
into matrix/ carries its header (its first line): those are init's, and
once any exists init refuses to run again without --force, which writes
them again; a matrix file without it (a launcher.yaml, style.yaml or
docs.yaml the project wrote, or one whose header line was deleted) is the
project's own, read and kept byte for byte.  matrix/baseline.yaml is not
written here (``ccvm init`` records it once, where there is none).  The
workflow and the noxfile go through
``ccvm generate``'s own rules: generated files carry its header and are
written again; a hand-written workflow where ccvm's would go stops init
before anything is written; a hand-written noxfile is left alone.  A
noxfile an earlier ccvm init wrote (without the header) cannot be kept in
step with matrix/gate.yaml: init --force refuses, naming it.  Everything is
checked first: the matrix is loaded back and the generated files rendered
from it in a scratch directory, so a failure leaves the tree as it was."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ccvm.adopt.discover import Findings, discover, written_by_init
from ccvm.adopt.render import MATRIX_FILES, render
from ccvm.adopt.source import PipGuess, guess
from ccvm.ci.generate import (
    Output,
    conflict_message,
    conflicting,
    find_drift,
    generated_on_disk_file,
    render_all,
    templates_dir,
)
from ccvm.ci.noxfile import LEGACY_MARK, NOXFILE
from ccvm.errors import ConfigError, UsageError
from ccvm.files import write_atomic
from ccvm.matrix.model import load_matrix


@dataclass(frozen=True, kw_only=True)
class Adoption:
    findings: Findings
    wrote: tuple[str, ...]
    left_alone: tuple[str, ...]
    guesses: tuple[str, ...]
    removed: tuple[str, ...] = ()  # init's own files it no longer writes


def _theirs(root: Path) -> list[str]:
    """The matrix files the project wrote itself (no init header): read, never written over."""
    return [path for path in MATRIX_FILES if (root / path).exists() and not written_by_init(root / path)]


def _refuse_second_run(root: Path, force: bool) -> None:
    """A matrix/ holding only the project's own files is not adopted yet; one holding a file init
    wrote is, unless --force."""
    present = [path for path in MATRIX_FILES if (root / path).exists() and written_by_init(root / path)]
    if present and not force:
        raise UsageError(
            f"{root / present[0]} exists: ccvm init has run here; pass --force to write ccvm's files again"
        )


def _refuse_old_noxfile(root: Path) -> None:
    """A noxfile an earlier ccvm init wrote, without the generated header: nothing keeps it in step."""
    path = root / NOXFILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    except OSError:
        return
    if LEGACY_MARK in text and not generated_on_disk_file(text):
        raise UsageError(
            f"{path} was written by an earlier ccvm init and would disagree with the new matrix/gate.yaml: "
            "remove it (ccvm init --force writes it again, and ccvm generate keeps it in step), or delete "
            "its docstring's first line to keep it as the project's own"
        )


def refuse_to_adopt(root: Path, force: bool) -> None:
    """UsageError where init must not write: it has run here (without --force), or an old noxfile of
    its own would disagree.  Cheap, and checked before anything is read or probed."""
    _refuse_second_run(root, force)
    _refuse_old_noxfile(root)


def _kept(root: Path, files: dict[str, str]) -> dict[str, str]:
    """The project's own files already in matrix/ (launcher.yaml, ...), which the new matrix is loaded with."""
    matrix = root / "matrix"
    if not matrix.is_dir():
        return {}
    paths = sorted(path for path in matrix.iterdir() if path.is_file() and f"matrix/{path.name}" not in files)
    try:
        return {f"matrix/{path.name}": path.read_text(encoding="utf-8") for path in paths}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(matrix, None, f"cannot read the project's matrix files: {exc}") from None


def _outputs(root: Path, files: dict[str, str]) -> tuple[Output, ...]:
    """The workflow(s) the new matrix renders to, from a scratch copy of it."""
    with tempfile.TemporaryDirectory(prefix="ccvm-init-") as scratch:
        for relpath, text in files.items():
            if relpath.startswith("matrix/"):
                path = Path(scratch) / relpath
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
        return render_all(load_matrix(Path(scratch) / "matrix"), templates_dir(root))


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise ConfigError(path, None, f"cannot write: {exc.strerror or exc}") from None


def _advice(workflow: str) -> str:
    other = "ccvm" if workflow != "ccvm" else "ccvm-ci"
    return (
        f"it is the project's own; run `ccvm init --workflow NAME` (e.g. --workflow {other}) "
        "to write ccvm's as .github/workflows/NAME.yml"
    )


def adopt(root: Path, *, force: bool = False, workflow: str = "ccvm", pip: PipGuess | None = None) -> Adoption:
    """Adopt ccvm in root; its workflow is .github/workflows/WORKFLOW.yml, installing ccvm as pip says
    (default: guessed from how this ccvm is installed)."""
    theirs = _theirs(root)
    refuse_to_adopt(root, force)
    findings = discover(root)
    rendered = render(findings, pip=pip or guess(), workflow=workflow)
    files = {path: text for path, text in rendered.files.items() if path not in theirs}
    stale = [path for path in MATRIX_FILES if path not in files and path not in theirs and (root / path).exists()]
    kept = {path: text for path, text in _kept(root, files).items() if path not in stale}
    outputs = _outputs(root, {**kept, **files})
    drift = find_drift(root, outputs)
    conflict = conflicting(drift, outputs)
    if conflict:
        raise ConfigError(root / conflict.path, None, conflict_message(conflict, _advice(workflow)))
    texts = {**files, **{o.path: o.text for o in outputs if o.path in {d.path for d in drift}}}
    for relpath, text in texts.items():
        _write(root / relpath, text)
    for relpath in stale:  # init's own, no longer found (a launcher.yaml whose launcher is gone)
        (root / relpath).unlink()
    own = [o.path for o in outputs if o.optional and o.path not in texts and _hand_written(root / o.path)]
    left_alone = [f"{path} (the project's own)" for path in [*theirs, *own]]
    left_alone += [f"{o.path} (up to date)" for o in outputs if o.path not in texts and o.path not in own]
    return Adoption(
        findings=findings,
        wrote=tuple(texts),
        left_alone=tuple(left_alone),
        guesses=rendered.guesses,
        removed=tuple(stale),
    )


def _hand_written(path: Path) -> bool:
    try:
        return path.is_file() and not generated_on_disk_file(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return False
