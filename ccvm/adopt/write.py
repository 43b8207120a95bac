"""Write what render.py made, and the generated workflow, into the project.

Nothing the project already has is changed: the matrix files are ccvm's
(rewritten only with --force once any of them exists; a matrix/ holding
only the project's own launcher.yaml, style.yaml or docs.yaml is read, kept
byte for byte, and completed), noxfile.py, matrix/style.yaml and
matrix/docs.yaml are written only
where there is none, and the workflow goes through ``ccvm generate``'s
own rules (a hand-written file where it would go stops init before anything
is written).  Everything is checked first: the matrix is loaded back and the
workflow rendered from it in a scratch directory, so a failure leaves the
tree as it was."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ccvm.adopt.discover import Findings, discover
from ccvm.adopt.render import MATRIX_FILES, render
from ccvm.adopt.source import PipGuess, guess
from ccvm.ci.generate import Output, conflict_message, conflicting, find_drift, render_all, templates_dir
from ccvm.errors import ConfigError, UsageError
from ccvm.files import write_atomic
from ccvm.matrix.model import load_matrix


@dataclass(frozen=True, kw_only=True)
class Adoption:
    findings: Findings
    wrote: tuple[str, ...]
    left_alone: tuple[str, ...]
    guesses: tuple[str, ...]


# Files in matrix/ the project may have written itself before init: read, never written over.
PROJECTS_OWN = ("matrix/style.yaml", "matrix/docs.yaml")  # init writes one only where there is none (like noxfile.py)


def _refuse_second_run(root: Path, theirs: list[str], force: bool) -> None:
    """A matrix/ holding only the project's own files (launcher.yaml, style.yaml, docs.yaml) is not adopted yet;
    one holding any file init writes is, unless --force."""
    present = [relpath for relpath in MATRIX_FILES if relpath not in theirs and (root / relpath).exists()]
    if present and not force:
        raise UsageError(
            f"{root / present[0]} exists: ccvm init has run here (or the project has a matrix/ of its own); "
            "pass --force to write ccvm's matrix files again"
        )


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
    theirs = [path for path in ("noxfile.py", *PROJECTS_OWN) if (root / path).exists()]
    _refuse_second_run(root, theirs, force)
    findings = discover(root)
    rendered = render(findings, noxfile="noxfile.py" not in theirs, pip=pip or guess(), workflow=workflow)
    files = {path: text for path, text in rendered.files.items() if path not in theirs}
    outputs = _outputs(root, {**_kept(root, files), **files})
    drift = find_drift(root, outputs)
    conflict = conflicting(drift, outputs)
    if conflict:
        raise ConfigError(root / conflict.path, None, conflict_message(conflict, _advice(workflow)))
    texts = {**files, **{o.path: o.text for o in outputs if o.path in {d.path for d in drift}}}
    for relpath, text in texts.items():
        _write(root / relpath, text)
    left_alone = [f"{path} (the project's own)" for path in theirs]
    left_alone += [f"{o.path} (up to date)" for o in outputs if o.path not in texts]
    return Adoption(findings=findings, wrote=tuple(texts), left_alone=tuple(left_alone), guesses=rendered.guesses)
