"""Nox sessions: the same work as the ``ccvm`` CLI, each in its own venv.

    nox -s boot                     boot the stub guest on every runnable cell
    nox -s boot -- --cell aarch64-tcg-virt
    nox -s tests                    the project's own test suite (boots real QEMU)
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
def tests(session: nox.Session) -> None:
    """The project's tests, boot tests included (they boot real QEMU)."""
    _install(session, "test", "lint")
    session.run("pytest", "--boot", *session.posargs)
