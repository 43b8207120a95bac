"""Shared fixtures.  Boot tests (marker ``boot``) boot real QEMU; they run
with ``--boot`` (``nox -s tests`` passes it).  Under CI they are never
skipped: missing --boot or missing QEMU is an error there."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--boot", action="store_true", help="run the tests that boot real QEMU guests")


@pytest.hookimpl(trylast=True)  # after -m has deselected what it will
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = config.getoption("--boot")
    in_ci = bool(os.environ.get("CI"))
    for item in items:
        if "boot" not in item.keywords:
            continue
        if not wanted:
            if in_ci:
                raise pytest.UsageError("CI is set: boot tests must run; pass --boot (nox -s tests does)")
            item.add_marker(pytest.mark.skip(reason="boots real QEMU: run with --boot (nox -s tests does)"))
        elif not (shutil.which("qemu-system-x86_64") and shutil.which("qemu-system-aarch64")):
            message = "QEMU for both arches is required for boot tests (bash .ci/setup installs it)"
            if in_ci:
                raise pytest.UsageError(message)
            item.add_marker(pytest.mark.skip(reason=message))


@pytest.fixture
def ccvm_cmd() -> list[str]:
    return [sys.executable, "-m", "ccvm"]


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture
def isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """git in this test sees neither the caller's repository nor its configuration."""
    from gitrepo import isolated_git_env  # tests/ is on sys.path, as for every test module

    from ccvm.ci import gitchange

    for key, value in isolated_git_env().items():
        monkeypatch.setenv(key, value)
    for key in gitchange.REPO_LOCATION_VARS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(autouse=True)
def _no_inherited_ccvm_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the CCVM_* variables they mean; none leak in from the caller
    (for example CCVM_MATRIX when the gate runs this suite)."""
    for key in list(os.environ):
        if key.startswith("CCVM_"):
            monkeypatch.delenv(key)
