"""The test tiers' own rules (tests/conftest.py, tests/tiers.py): the skip
policy, where tools are found, and that the tier tables name real tests."""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import conftest
import pytest
import tiers

TESTS = Path(__file__).resolve().parent


def test_a_missing_need_skips_locally_with_the_hint(monkeypatch):
    monkeypatch.setattr(tiers, "SUITE_IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match=r"cpio is not installed \(apt-get install cpio; bash .ci/setup"):
        tiers.unavailable("cpio is not installed", tiers.TOOL_HINTS["cpio"])


def test_a_missing_need_fails_under_ci_with_the_hint(monkeypatch):
    monkeypatch.setattr(tiers, "SUITE_IN_CI", True)
    with pytest.raises(
        pytest.fail.Exception, match=r"CI is set.*no-such-tool-x is not installed \(bash .ci/setup installs it\)"
    ):
        tiers.require_tool("no-such-tool-x")


def test_an_optional_tool_only_ever_skips(monkeypatch):
    monkeypatch.setattr(tiers, "SUITE_IN_CI", True)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(pytest.skip.Exception, match="actionlint is not installed"):
        tiers.require_tool("actionlint")


def test_tools_are_found_next_to_the_interpreter_before_path(tmp_path, monkeypatch):
    """The venv's wheels (mdbook, shfmt, ...) count even when the venv is not on PATH."""
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    tool = venv_bin / "mdbook"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert tiers.find_tool("mdbook") == str(tool)
    assert tiers.find_tool("sh") is None
    monkeypatch.setenv("PATH", os.defpath)
    assert tiers.find_tool("sh") is not None


def _test_names(module: str) -> set[str]:
    tree = ast.parse((TESTS / module).read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_tier_table_entry_names_an_existing_test():
    for entry in conftest.SLOW | conftest.BOOT_MODULES | conftest.NETWORK_MODULES:
        module, _, name = entry.partition("::")
        assert (TESTS / module).is_file(), entry
        assert not name or name in _test_names(module), entry


def test_tool_fixtures_have_hints_or_are_optional():
    for tool in conftest.TOOL_FIXTURES:
        assert tool in tiers.TOOL_HINTS or tool in tiers.OPTIONAL_TOOLS, tool


def test_markers_are_applied_from_fixtures_and_tables(request):
    """This test asks for no tier fixture: it carries no tier marker."""
    assert not {"boot", "network", "nix", "needs_tool", "slow"} & {m.name for m in request.node.iter_markers()}
