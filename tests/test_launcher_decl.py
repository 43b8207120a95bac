"""matrix/launcher.yaml: the declared launcher under test, parsed with
file:line for every mistake; absent, it is ccvm's embedded `ccvm vm`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from clirun import run_ccvm

from ccvm.errors import ConfigError
from ccvm.launcher.embedded import EMBEDDED
from ccvm.launcher.resolve import given_wrapper, under_test
from ccvm.matrix.launcher import ArgvFormat, DryRunStyle, Staged, load_launcher
from ccvm.matrix.model import load_matrix

ROOT = Path(__file__).resolve().parent.parent
SEED = Path(__file__).resolve().parent / "fixtures" / "seed-project"


def test_the_seed_fixture_declaration_parses():
    launcher = load_launcher(SEED / "matrix")
    assert launcher is not None and launcher.declared and not launcher.embedded
    assert launcher.argv == ("bin/ccvm",)
    assert launcher.dry_run.prints is DryRunStyle.SCRATCH_DIR
    assert launcher.dry_run.argv_file == "argv" and launcher.dry_run.argv_format is ArgvFormat.NUL
    assert launcher.cell_env(arch="aarch64", accel="tcg", machine="virt") == {
        "CCVM_ARCH": "aarch64",
        "CCVM_ACCEL": "tcg",
        "CCVM_MACHINE": "virt",
    }
    writable = launcher.share_switch("writable")
    assert writable.flag == "--writable-cwd" and writable.variable == "CCVM_WRITABLE_CWD"
    assert launcher.share_switch("overlay").is_default
    assert launcher.secrets.files == ("~/.claude/.credentials.json",)
    assert launcher.secrets.variables == ("ANTHROPIC_API_KEY",)
    assert launcher.config_files == ("~/.claude/settings.json",)
    assert launcher.staging("~/.claude/.credentials.json") is Staged.NEVER
    assert launcher.staging("~/.claude/settings.json") is Staged.COPY
    assert launcher.host_scripts == ("tests/host.sh",) and launcher.launcher_variable == "CCVM"
    overlay, writable_boot = launcher.boot.scenarios
    assert overlay.args[:2] == ("two words", 'it\'s "quoted"') and "new\nline" in overlay.args and "" in overlay.args
    assert overlay.exit_status == 7 and launcher.guest_assets == "env"
    assert overlay.must_not_exist == ("stub-wrote.txt",) and overlay.prepare == {"probe.txt": "from-host"}
    assert any(p.search("ARGC:10") for p in overlay.expect)
    assert writable_boot.share == "writable" and writable_boot.must_exist == ("stub-wrote.txt",)


def test_no_declaration_is_the_embedded_launcher():
    matrix = load_matrix(ROOT / "matrix")
    assert matrix.declared_launcher is None and under_test(matrix) is EMBEDDED
    assert EMBEDDED.dry_run.prints is DryRunStyle.PLAN and EMBEDDED.dry_run.variable == "CCVM_DRYRUN"


def test_a_full_matrix_loads_its_declaration(tmp_path):
    matrix = tmp_path / "matrix"
    shutil.copytree(ROOT / "matrix", matrix)
    shutil.copy(SEED / "matrix" / "launcher.yaml", matrix / "launcher.yaml")
    assert load_matrix(matrix).declared_launcher.name == "seed-ccvm"


def test_a_build_per_system(tmp_path):
    path = tmp_path / "launcher.yaml"
    path.write_text(
        "argv: [./result/bin/ccvm]\n"
        "build:\n"
        "  x86_64-linux: {flake: '.#ccvm'}\n"
        "  aarch64-linux: {command: [make, wrapper]}\n"
    )
    launcher = load_launcher(tmp_path)
    assert launcher.build_for("x86_64-linux").flake == ".#ccvm"
    assert launcher.build_for("aarch64-linux").command == ("make", "wrapper")
    assert launcher.dry_run.prints is None  # not said: found out from the first dry run


BAD = {
    "unknown-key": ("argv: [x]\ndry_rn: {}\n", 2, "unknown key 'dry_rn'", "did you mean 'dry_run'"),
    "no-argv": ("name: x\n", 1, "needs `argv`", ""),
    "placeholder": (
        "argv: [x]\nenv:\n  CCVM_ACCEL: '{acel}'\n",
        3,
        "unknown placeholder {acel}",
        "did you mean 'accel'",
    ),
    "prints": ("argv: [x]\ndry_run:\n  prints: scratch\n", 3, "unknown prints 'scratch'", "scratch-dir"),
    "argv-file-with-plan": ("argv: [x]\ndry_run:\n  prints: plan\n  argv_file: argv\n", 4, "argv_file goes with", ""),
    "share-mode": ("argv: [x]\nshare:\n  writeable: {flag: --w}\n", 3, "unknown key 'writeable'", "writable"),
    "share-no-switch": ("argv: [x]\nshare:\n  writable: {}\n", 3, "default: true", ""),
    "two-defaults": (
        "argv: [x]\nshare:\n  overlay: {default: true}\n  writable: {default: true}\n",
        3,
        "only one mode",
        "",
    ),
    "build-both": ("argv: [x]\nbuild:\n  x86_64-linux: {flake: a, command: [b]}\n", 3, "exactly one of", ""),
    "build-system": ("argv: [x]\nbuild:\n  x86-linux: {flake: a}\n", 3, "not a Nix system", ""),
    "secret-path": ("argv: [x]\nsecrets:\n  files: [/etc/key]\n", 3, "under the home directory", ""),
    "secret-staged-copy": (
        "argv: [x]\nsecrets:\n  files:\n    - {path: ~/.key, staged: copy}\n",
        4,
        "~/.key is a secret",
        "write never or owner-only",
    ),
    "staged-word": (
        "argv: [x]\nconfig_files:\n  - {path: ~/.rc, staged: owneronly}\n",
        3,
        "unknown staged 'owneronly'",
        "did you mean 'owner-only'",
    ),
    "staged-no-path": ("argv: [x]\nconfig_files:\n  - {staged: copy}\n", 3, "needs `path`", ""),
    "staged-key": ("argv: [x]\nconfig_files:\n  - {path: ~/.rc, stage: copy}\n", 3, "unknown key 'stage'", "staged"),
    "config-path": ("argv: [x]\nconfig_files:\n  - {path: .rc}\n", 3, "under the home directory", ""),
    "secret-and-config": (
        "argv: [x]\nsecrets: {files: [~/.k]}\nconfig_files: [~/.k]\n",
        3,
        "~/.k is in secrets.files too",
        "",
    ),
    "launcher-variable": ("argv: [x]\nlauncher_variable: my-launcher\n", 2, "not an environment variable name", ""),
    "script-path": ("argv: [x]\nhost_scripts: [../up.sh]\n", 2, "relative to the project root", ""),
    "bad-regex": (
        "argv: [x]\nshare: {overlay: {default: true}}\nboot:\n  scenarios:\n    - name: a\n      share: overlay\n"
        "      expect: ['ok', '(unclosed']\n",
        7,
        "bad regular expression",
        "",
    ),
    "scenario-share": (
        "argv: [x]\nshare: {overlay: {default: true}}\nboot:\n  scenarios:\n    - name: a\n      share: writable\n",
        6,
        "unknown share 'writable'",
        "overlay",
    ),
    "scenario-status": (
        "argv: [x]\nshare: {overlay: {default: true}}\nboot:\n  scenarios:\n"
        "    - {name: a, share: overlay, exit_status: 300}\n",
        5,
        "exit_status must be a whole number from 0 to 255",
        "",
    ),
    "host-file-escapes": (
        "argv: [x]\nshare: {overlay: {default: true}}\nboot:\n  scenarios:\n    - name: a\n      share: overlay\n"
        "      host_files: {exist: [../../etc/passwd]}\n",
        7,
        "inside the shared directory",
        "",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_declaration_names_file_and_line(tmp_path, name):
    text, line, says, hint = BAD[name]
    (tmp_path / "launcher.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_launcher(tmp_path)
    error = str(caught.value)
    assert error.startswith(f"{tmp_path / 'launcher.yaml'}:{line}: "), error
    assert says in error and hint in error, error
    assert "\n" not in error


BOOT_HEAD = "argv: [x]\nshare: {overlay: {default: true}}\nboot:\n  scenarios:\n"


@pytest.mark.parametrize(
    ("scenarios", "line", "message"),
    [
        ("    - {name: a, share: overlay}\n    - {name: a, share: overlay}\n", 6, "duplicate scenario name 'a'"),
        ("    - just-a-word\n", 5, "each scenario must be a mapping of keys to values"),
        ("    []\n", 4, "scenarios is empty; declare at least one boot"),
    ],
)
def test_boot_scenarios_are_a_non_empty_list_of_distinct_names(tmp_path, scenarios, line, message):
    (tmp_path / "launcher.yaml").write_text(BOOT_HEAD + scenarios)
    with pytest.raises(ConfigError) as caught:
        load_launcher(tmp_path)
    assert str(caught.value) == f"{tmp_path / 'launcher.yaml'}:{line}: {message}"


def test_ccvm_host_reports_a_bad_declaration_as_one_line(tmp_path):
    (tmp_path / "matrix").mkdir()
    (tmp_path / "matrix" / "launcher.yaml").write_text("argv: [x]\nshare:\n  writeable: {flag: --w}\n")
    result = run_ccvm("host", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "launcher.yaml:3:" in result.stderr
    assert "did you mean 'writable'" in result.stderr and "Traceback" not in result.stderr


def test_guest_assets_is_none_by_default_and_a_bad_value_names_its_line(tmp_path):
    path = tmp_path / "launcher.yaml"
    path.write_text("argv: [bin/ccvm]\n")
    assert load_launcher(tmp_path).guest_assets == "none"
    path.write_text("argv: [bin/ccvm]\nguest_assets: envv\n")
    with pytest.raises(ConfigError) as caught:
        load_launcher(tmp_path)
    assert str(caught.value).startswith(f"{path}:2: unknown guest_assets 'envv'") and "'env'" in str(caught.value)


def test_the_seed_fixture_pins_the_same_guest_as_ccvm():
    """The fixture's wrapper boots ccvm's embedded guest: its guest.yaml is a copy of ccvm's pins."""
    assert (SEED / "matrix" / "guest.yaml").read_text() == (ROOT / "matrix" / "guest.yaml").read_text()
    assert [cell.id for cell in load_matrix(SEED / "matrix").cells] == ["x86_64-tcg-q35", "aarch64-tcg-virt"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("argv: [x]\ndry_run: {prints: scratchdir}\n", "did you mean 'scratch-dir'?"),
        ("argv: [x]\ndry_run: {argv_format: nil}\n", "did you mean 'nul'?"),
        ("argv: [x]\nguest_assets: yes\n", "YAML reads this word as true"),
    ],
)
def test_bad_choices_are_named_as_the_file_spells_them(tmp_path, text, expected):
    (tmp_path / "launcher.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_launcher(tmp_path)
    assert expected in str(caught.value) and "<" not in str(caught.value)


def test_staging_is_declared_per_file_and_undeclared_by_default(tmp_path):
    (tmp_path / "launcher.yaml").write_text(
        "argv: [x]\nsecrets:\n  files: [~/.a, {path: ~/.b, staged: owner-only}]\n"
        "config_files:\n  - ~/.rc\n  - {path: ~/.d/conf, staged: never}\nlauncher_variable: SEED_LAUNCHER\n"
    )
    launcher = load_launcher(tmp_path)
    assert launcher.secrets.files == ("~/.a", "~/.b") and launcher.config_files == ("~/.rc", "~/.d/conf")
    assert launcher.staged == {"~/.b": Staged.OWNER_ONLY, "~/.d/conf": Staged.NEVER}
    assert launcher.staging("~/.a") is None and launcher.launcher_variable == "SEED_LAUNCHER"
    # ccvm vm declares its own rule; a bare --wrapper declares nothing.
    assert set(EMBEDDED.staged.values()) == {Staged.OWNER_ONLY} and len(EMBEDDED.staged) == 2
    assert given_wrapper("/bin/true").staged == {}


def test_a_secret_listed_by_default_as_configuration_is_only_a_secret(tmp_path):
    (tmp_path / "launcher.yaml").write_text("argv: [x]\nsecrets: {files: [~/.claude/settings.json]}\n")
    launcher = load_launcher(tmp_path)
    assert launcher.config_files == () and launcher.secrets.files == ("~/.claude/settings.json",)
