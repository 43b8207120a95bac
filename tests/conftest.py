"""Shared fixtures, and the test tiers: every marker is applied and
enforced here (the markers are registered in pyproject.toml).

    boot        boots real QEMU guests: the tests in BOOT
    network     reaches the Debian archive: the tests in NETWORK
    nix         runs the real nix: every test that asks for ``nix_bin`` or ``nix_instantiate_bin``
    needs_tool  needs an external tool: every test that asks for a tool's
                fixture (``cpio_bin``, ``mdbook_bin``, ...: TOOL_FIXTURES)
    slow        takes more than a few seconds: SLOW (and boot, network)

boot and network run only with ``--boot`` (``nox -s tests`` passes it).
A tier's missing need (QEMU, a tool, --boot) follows the one skip policy of
tests/tiers.py: skipped locally, an error under CI, where every tier runs.

BOOT, NETWORK and SLOW name a whole module or one test (module::test).
These tables are the only place tier marks come from: no test module sets
``pytestmark`` or decorates a test with a tier mark (test_tiers.py checks).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tiers import in_ci, require_tool

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

BOOT = {
    "test_boot_real.py",
    "test_vm_real.py",
    "test_seed_boot.py",
    "test_declared_boot.py",
    "test_fast_boot_real.py",
    "test_cache_concurrency.py",  # each test starts from an empty cache: it downloads the guest too
    "test_vmlinux.py::test_the_pinned_bzimage_yields_a_pvh_vmlinux_cached_by_its_sha256",  # on a cold cache, fetches
    "test_tty_real.py",
}
NETWORK = {"test_pin_policy.py", "test_cache_concurrency.py"}
OPT_IN = {"boot", "network"}  # the tiers --boot selects
# A fixture per external tool, its path: cpio_bin, mdbook_bin, nix_instantiate_bin, ...; asking for one
# puts the test in needs_tool.
TOOL_FIXTURES = (
    "cpio",
    "git",
    "mdbook",
    "nix-instantiate",
    "nox",
    "check-jsonschema",
    "zizmor",
    "actionlint",
    "qemu-system-x86_64",
)
# Tests that take 2 s or more here (pytest --durations, 2 shared cores) without booting anything:
# a whole module, or module::test.  test_tiers.py checks that each entry names a test that exists.
SLOW = {
    "test_hostsuite.py",
    "test_gate.py::test_terminal_change_needs_a_current_attestation",
    "test_gate.py::test_attestation_is_not_part_of_the_change",
    "test_gate.py::test_docs_only_change_plans_and_runs_only_docs_and_drift",
    "test_gate.py::test_code_change_runs_the_code_checks_in_the_checklist",
    "test_gate.py::test_gate_from_a_subdirectory_writes_reports_at_the_root_and_keeps_the_attestation",
    "test_gate.py::test_globs_agree_with_git_check_ignore",
    "test_egress.py::test_without_the_preflight_nix_itself_fails_on_the_download",
    "test_egress.py::test_a_dry_run_past_its_timeout_is_reported_as_timed_out_not_as_an_evaluation_error",
    "test_flake_check.py::test_listing_checks_past_the_timeout_is_reported_as_timed_out",
    "test_flake_check.py::test_checks_that_do_not_evaluate_fail_with_their_message",
    "test_flake_check.py::test_an_unreachable_cache_is_named_as_offline_noise_not_counted",
    "test_nix_version.py::test_nixpkgs_refusing_an_old_nix_is_reported_as_that_not_as_a_failure_of_the_flake",
    "test_flake_check.py::test_failing_check_is_named_from_the_builder_line_with_its_log",
    "test_fmt.py::test_cli_exit_statuses_and_junit",
    "test_docscheck.py::test_cli_exit_statuses_and_junit",
    "test_console_vm.py::test_a_qemu_ignoring_sigterm_is_killed",
    "test_baseline.py::test_fixed_and_deleted_findings_are_named_and_prune_drops_them_never_adding",
    "test_baseline.py::test_init_baselines_what_a_project_has_and_lists_its_own_rules_apart",
    "test_launcher_tree.py::test_a_timeout_stops_a_setsid_child_that_ignores_sigterm",
    "test_host_declared.py::test_a_script_that_never_ends_is_killed_with_its_group",  # its 10 s script timeout
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--boot", action="store_true", help="run the tiers that boot real QEMU guests or reach the Debian archive"
    )


def _tool_fixture_name(tool: str) -> str:
    return tool.replace("-", "_") + "_bin"


def _tiers_of(item: pytest.Item) -> list[pytest.MarkDecorator]:
    module = item.path.name
    name = getattr(item, "originalname", item.name)
    marks = []
    listed = {module, f"{module}::{name}"}
    if listed & BOOT:
        marks.append(pytest.mark.boot)
    if listed & NETWORK:
        marks.append(pytest.mark.network)
    fixtures = set(getattr(item, "fixturenames", ()))
    if {"nix_bin", "nix_instantiate_bin"} & fixtures:
        marks.append(pytest.mark.nix)
    marks += [pytest.mark.needs_tool(t) for t in TOOL_FIXTURES if _tool_fixture_name(t) in fixtures]
    if listed & (BOOT | NETWORK | SLOW):
        marks.append(pytest.mark.slow)
    return marks


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    for item in items:  # the tiers first, so that -m selects by them
        for mark in _tiers_of(item):
            item.add_marker(mark)
    yield  # -m and -k deselect here
    if in_ci() and not config.getoption("--boot") and any(OPT_IN & set(item.keywords) for item in items):
        raise pytest.UsageError("CI is set: the boot and network tiers must run; pass --boot (nox -s tests does)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    tiers = OPT_IN & {mark.name for mark in item.iter_markers()}
    if not tiers:
        return
    if not item.config.getoption("--boot"):
        pytest.skip(f"{' and '.join(sorted(tiers))} tier: run with --boot (nox -s tests does)")
    if "boot" in tiers:
        for arch in ("x86_64", "aarch64"):
            require_tool(f"qemu-system-{arch}")


def _make_tool_fixture(tool: str):
    @pytest.fixture(name=_tool_fixture_name(tool))
    def tool_path() -> str:
        return require_tool(tool)

    tool_path.__doc__ = f"The path of {tool}; missing: skipped locally, failed under CI."
    return tool_path


for _tool in TOOL_FIXTURES:
    globals()[f"_{_tool_fixture_name(_tool)}"] = _make_tool_fixture(_tool)


@pytest.fixture
def nix_bin() -> str:
    """The nix binary (the nix tier); missing: skipped locally, failed under CI."""
    return require_tool("nix")


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
    (for example CCVM_MATRIX when the gate runs this suite).  Nor does CI: under
    CI ccvm fails what it would skip for a missing tool (ccvm.require), and a
    test of that behaviour sets CI itself; the suite's own CI flag was read
    before (tiers.SUITE_IN_CI) and still rules the tiers."""
    for key in list(os.environ):
        if key.startswith("CCVM_") or key == "CI":
            monkeypatch.delenv(key)
