"""The test tiers' own rules (tests/conftest.py, tests/tiers.py): the skip
policy, where tools are found, and that the tier tables name real tests."""

from __future__ import annotations

import ast
import json
import os
import subprocess
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
    for entry in conftest.SLOW | conftest.BOOT | conftest.NETWORK:
        module, _, name = entry.partition("::")
        assert (TESTS / module).is_file(), entry
        assert not name or name in _test_names(module), entry


def test_tool_fixtures_have_hints_or_are_optional():
    for tool in conftest.TOOL_FIXTURES:
        assert tool in tiers.TOOL_HINTS or tool in tiers.OPTIONAL_TOOLS, tool


def test_markers_are_applied_from_fixtures_and_tables(request):
    """This test asks for no tier fixture: it carries no tier marker."""
    assert not {"boot", "network", "nix", "needs_tool", "slow"} & {m.name for m in request.node.iter_markers()}


# A plugin that writes each collected test's tier marks as JSON, so the test below sees what the conftest
# policy applied in a real collection (its own pytest process, not this session's items).
DUMP_PLUGIN = """
import json, os
TIERS = {"boot", "network", "nix", "needs_tool", "slow"}
def pytest_collection_finish(session):
    marks = {}
    for item in session.items:
        found = [m for m in item.iter_markers() if m.name in TIERS]
        marks[item.nodeid] = sorted(m.name + ("(" + ",".join(map(str, m.args)) + ")" if m.args else "") for m in found)
    with open(os.environ["TIER_MARKS_OUT"], "w") as out:
        json.dump(marks, out)
"""


def collected_marks(tmp_path: Path, *modules: str) -> dict[str, list[str]]:
    (tmp_path / "tierdump.py").write_text(DUMP_PLUGIN)
    out = tmp_path / "marks.json"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TIER_MARKS_OUT": str(out)}
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "tierdump", "--boot", *modules]
    done = subprocess.run(argv, cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def test_the_conftest_policy_really_marks_what_it_collects(tmp_path):
    marks = collected_marks(
        tmp_path,
        "tests/test_boot_real.py",
        "tests/test_pin_policy.py",
        "tests/test_cache_concurrency.py",
        "tests/test_vmlinux.py",
        "tests/test_docscheck.py",
        "tests/test_nix_build.py",
        "tests/test_gate.py",
    )

    def of(module: str, test: str = "") -> list[list[str]]:
        found = [m for node, m in marks.items() if node.startswith(f"tests/{module}::{test}")]
        assert found, f"nothing collected for {module}::{test}"
        return found

    assert all({"boot", "slow"} <= set(m) for m in of("test_boot_real.py"))  # a BOOT module
    assert all({"network", "slow"} <= set(m) for m in of("test_pin_policy.py"))  # a NETWORK module
    assert all({"boot", "network", "slow"} <= set(m) for m in of("test_cache_concurrency.py"))
    pinned = "test_the_pinned_bzimage_yields_a_pvh_vmlinux_cached_by_its_sha256"
    assert of("test_vmlinux.py", pinned) == [["boot", "slow"]]  # one test of a module: module::test
    assert of("test_vmlinux.py", "test_a_supplied_elf_kernel_boots_as_given") == [[]]
    assert of("test_docscheck.py", "test_heading_ids_match_what_mdbook_builds") == [["needs_tool(mdbook)"]]
    assert of("test_docscheck.py", "test_cli_exit_statuses_and_junit") == [["slow"]]  # a SLOW entry
    assert all(m == [] for m in of("test_docscheck.py", "test_normalize_id_follows_mdbook"))
    assert all("nix" in m for m in of("test_nix_build.py", "test_builds_pass_here"))  # asks for nix_bin


TIER_NAMES = {"boot", "network", "nix", "needs_tool", "slow"}


def _tier_marks_written_in(module: Path) -> list[str]:
    """Where a test module marks itself with a tier: pytestmark = ..., or @pytest.mark.TIER on a test."""
    found = []
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in TIER_NAMES:
            value = node.value
            if isinstance(value, ast.Attribute) and value.attr == "mark":
                found.append(f"{module.name}:{node.lineno}: pytest.mark.{node.attr}")
    return found


def test_no_test_module_sets_a_tier_mark_of_its_own():
    """The conftest policy is the one place tier marks come from: a module marking itself escapes its
    tables (and so its rules, such as every boot test being slow)."""
    written = [place for module in sorted(TESTS.glob("test_*.py")) for place in _tier_marks_written_in(module)]
    assert written == [], written
