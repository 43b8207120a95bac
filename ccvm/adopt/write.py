"""Write what render.py made, and the generated workflow, into the project.

Nothing the project already has is changed: the matrix files are ccvm's
(rewritten only with --force, when matrix/ exists), noxfile.py is written
only where there is none, and the workflow goes through ``ccvm generate``'s
own rules (a hand-written file where it would go stops init before anything
is written).  Everything is checked first: the matrix is loaded back and the
workflow rendered from it in a scratch directory, so a failure leaves the
tree as it was."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ccvm.adopt.discover import Findings, discover
from ccvm.adopt.render import render
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


def _refuse_second_run(root: Path, force: bool) -> None:
    if (root / "matrix").exists() and not force:
        raise UsageError(
            f"{root / 'matrix'} exists: ccvm init has run here (or the project has a matrix/ of its own); "
            "pass --force to write ccvm's matrix files again"
        )


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
    _refuse_second_run(root, force)
    findings = discover(root)
    has_noxfile = (root / "noxfile.py").exists()
    rendered = render(findings, noxfile=not has_noxfile, pip=pip or guess(), workflow=workflow)
    outputs = _outputs(root, rendered.files)
    drift = find_drift(root, outputs)
    conflict = conflicting(drift, outputs)
    if conflict:
        raise ConfigError(root / conflict.path, None, conflict_message(conflict, _advice(workflow)))
    texts = {**rendered.files, **{o.path: o.text for o in outputs if o.path in {d.path for d in drift}}}
    for relpath, text in texts.items():
        _write(root / relpath, text)
    left_alone = ["noxfile.py (the project's own)"] if has_noxfile else []
    left_alone += [f"{o.path} (up to date)" for o in outputs if o.path not in texts]
    return Adoption(findings=findings, wrote=tuple(texts), left_alone=tuple(left_alone), guesses=rendered.guesses)
