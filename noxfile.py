"""Nox sessions: the same work as the ``ccvm`` CLI, each in its own venv.

nox -s boot                     boot the stub guest on every runnable cell
nox -s boot -- --cell aarch64-tcg-virt
nox -s host                     the launcher's contract through its dry-run hook, no VM
nox -s build                    nix build every matrix/builds.yaml target (-- --attr A --system S --flake REF)
nox -s flake_check              nix flake check, one JUnit case per check (-- --flake REF)
nox -s tests                    the project's own test suite (boots real QEMU)
nox -s gate                     every check this change requires before merge (matrix/gate.yaml)
nox -s fmt [-- --fix]           shfmt and nixfmt on every tracked shell script and *.nix
nox -s lint                     shellcheck and ruff
nox -s docs                     dead links, anchors and SUMMARY entries in docs/ and README.md
nox -s generate [-- --check]    render .github/workflows/ and ci/flake-checks.json (--check: drift check)
nox -s "boot_cell(x86_64-tcg-q35)"  one boot cell (one session per cell; see nox --list)
nox -s report                   merge JUnit files and write a Markdown summary
nox -s rehearse -- boot --cell x86_64-tcg-q35   run one CI job here, as the runner would
"""

from __future__ import annotations

import nox

nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = True


def _install(session: nox.Session, *extras: str) -> None:
    target = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", target)


# session -> (ccvm command, extras installed with the package, what it does)
CCVM_SESSIONS = {
    "boot": ("boot", (), "Boot smoke matrix: every runnable cell, real QEMU (ccvm boot)."),
    "host": ("host", (), "The launcher's contract, dry run, no VM (ccvm host)."),
    "build": ("build", (), "nix build of every matrix/builds.yaml target on every buildable system (ccvm build)."),
    "flake_check": ("flake-check", (), "nix flake check, one JUnit case per check (ccvm flake-check)."),
    "fmt": ("fmt", ("lint",), "Formatting: shfmt on shell scripts, nixfmt on *.nix (ccvm fmt; `-- --fix` rewrites)."),
    "lint": ("lint", ("lint",), "Lint: shellcheck on shell scripts, ruff check and format on Python (ccvm lint)."),
    "docs": ("docs", (), "Docs: SUMMARY entries, dead links and anchors in docs/ and README.md (ccvm docs)."),
    "generate": ("generate", (), "CI generation from the matrix (ccvm generate; `-- --check`: drift check)."),
    "gate": ("gate", ("test", "lint"), "Every check this change requires before merge (ccvm gate)."),
    "report": ("report", (), "Merge every JUnit file into one and write a Markdown summary (ccvm report)."),
    "rehearse": ("rehearse", (), "Run one CI job here as the runner would (ccvm rehearse; `-- JOB [--cell CELL]`)."),
}


def _ccvm_session(name: str, command: str, extras: tuple[str, ...], doc: str) -> None:
    def session_body(session: nox.Session) -> None:
        _install(session, *extras)
        session.run("ccvm", command, *session.posargs, external=False)

    session_body.__doc__ = doc
    nox.session(name=name)(session_body)


for _name, (_command, _extras, _doc) in CCVM_SESSIONS.items():
    _ccvm_session(_name, _command, _extras, _doc)


@nox.session
def tests(session: nox.Session) -> None:
    """The project's tests, boot tests included (they boot real QEMU)."""
    _install(session, "test", "lint")
    session.run("pytest", "--boot", "--durations=25", *session.posargs)


def _boot_cell_ids() -> list[str]:
    """The boot cells, from ci/flake-checks.json (generated from the matrix by `ccvm generate`, drift-checked).

    Read with the standard library because the venv that runs nox has neither ccvm nor PyYAML.
    """
    import json
    from pathlib import Path

    try:
        checks = json.loads((Path(__file__).parent / "ci" / "flake-checks.json").read_text(encoding="utf-8"))["checks"]
        return [check["name"].removeprefix("boot-") for check in checks if check["name"].startswith("boot-")]
    except (OSError, ValueError, KeyError, TypeError):
        return []


_CELLS = _boot_cell_ids()
if _CELLS:

    @nox.session
    @nox.parametrize("cell", _CELLS, ids=_CELLS)
    def boot_cell(session: nox.Session, cell: str) -> None:
        """One boot cell: the same as `nox -s boot -- --cell CELL`."""
        _install(session)
        session.run("ccvm", "boot", "--cell", cell, *session.posargs, external=False)
