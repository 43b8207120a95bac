"""Nox sessions: the same work as the ``ccvm`` CLI, each in its own venv.

nox -s boot                     boot the stub guest on every runnable cell
nox -s boot -- --cell aarch64-tcg-virt
nox -s build                    nix build every matrix/builds.yaml target (-- --attr A --system S --flake REF)
nox -s flake_check              nix flake check, one JUnit case per check (-- --flake REF)
nox -s tests                    the project's own test suite (boots real QEMU)
nox -s gate                     every check this change requires before merge (matrix/gate.yaml)
nox -s fmt [-- --fix]           shfmt and nixfmt on every tracked shell script and *.nix
nox -s lint                     shellcheck and ruff
nox -s docs                     dead links, anchors and SUMMARY entries in docs/ and README.md
nox -s generate [-- --check]    render .github/workflows/ and ci/flake-checks.json (--check: drift check)
nox -s "boot_cell(x86_64-tcg-q35)"  one boot cell (one session per cell; see nox --list)
"""

from __future__ import annotations

import nox

nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = True


def _install(session: nox.Session, *extras: str) -> None:
    target = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", target)


@nox.session
def boot(session: nox.Session) -> None:
    """Boot smoke matrix: every runnable cell, real QEMU (ccvm boot)."""
    _install(session)
    session.run("ccvm", "boot", *session.posargs, external=False)


@nox.session
def build(session: nox.Session) -> None:
    """Flake builds: nix build of every matrix/builds.yaml target on every buildable system (ccvm build)."""
    _install(session)
    session.run("ccvm", "build", *session.posargs, external=False)


@nox.session
def flake_check(session: nox.Session) -> None:
    """nix flake check, one JUnit case per check (ccvm flake-check; `-- --flake REF` for another flake)."""
    _install(session)
    session.run("ccvm", "flake-check", *session.posargs, external=False)


@nox.session
def tests(session: nox.Session) -> None:
    """The project's tests, boot tests included (they boot real QEMU)."""
    _install(session, "test", "lint")
    session.run("pytest", "--boot", *session.posargs)


@nox.session
def gate(session: nox.Session) -> None:
    """Definition of done for this change: every check matrix/gate.yaml requires (ccvm gate)."""
    _install(session, "test", "lint")
    session.run("ccvm", "gate", *session.posargs, external=False)


@nox.session
def fmt(session: nox.Session) -> None:
    """Formatting: shfmt on shell scripts, nixfmt on *.nix (ccvm fmt; `-- --fix` rewrites)."""
    _install(session, "lint")
    session.run("ccvm", "fmt", *session.posargs, external=False)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint: shellcheck on shell scripts, ruff check and ruff format --diff on Python (ccvm lint)."""
    _install(session, "lint")
    session.run("ccvm", "lint", *session.posargs, external=False)


@nox.session
def docs(session: nox.Session) -> None:
    """Docs: SUMMARY entries, dead links and anchors in docs/ and README.md (ccvm docs)."""
    _install(session)
    session.run("ccvm", "docs", *session.posargs, external=False)


@nox.session
def generate(session: nox.Session) -> None:
    """CI generation: .github/workflows/ and ci/flake-checks.json from the matrix (`-- --check`: drift check)."""
    _install(session)
    session.run("ccvm", "generate", *session.posargs, external=False)


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


@nox.session
def report(session: nox.Session) -> None:
    """Merge every JUnit file into one and write a Markdown summary (ccvm report)."""
    _install(session)
    session.run("ccvm", "report", *session.posargs, external=False)
