"""ccvm build against real Nix on the fixture flakes, and builds.yaml."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from nixtest import CCVM_TIMEOUT_S, ROOT, flake_copy, host_system, offline_env, other_system, read_junit, run_ccvm

from ccvm.commands.build import select_targets
from ccvm.errors import ConfigError, UsageError
from ccvm.matrix.builds import Builds, BuildTarget
from ccvm.matrix.model import load_matrix
from ccvm.nixtool import Nix, builder_systems, error_summary, failed_derivations, parse_version, store_name


@pytest.fixture
def system(nix_bin: str) -> str:
    """The system nix builds for here (asking for nix_bin puts the test in the nix tier)."""
    return host_system(nix_bin)


def build(tmp_path: Path, fixture: str, *args: str, env: dict | None = None):
    junit = tmp_path / "build.xml"
    result = run_ccvm("build", "--flake", flake_copy(tmp_path, fixture), "--junit", str(junit), *args, env=env)
    return result, (read_junit(junit) if junit.exists() else {})


def test_builds_pass_here_and_other_system_is_skipped_with_reason(tmp_path, system):
    result, cases = build(tmp_path, "builds", "--attr", "hello", "--attr", "greeting")
    assert result.returncode == 0, result.stderr
    other = other_system(system)
    assert set(cases) == {f"build.{a}.{s}" for a in ("hello", "greeting") for s in (system, other)}
    assert cases[f"build.greeting.{system}"].outcome == "pass"
    assert cases[f"build.hello.{system}"].outcome == "pass"
    skipped = cases[f"build.greeting.{other}"]
    assert skipped.outcome == "skipped"
    assert f"cannot build {other} here" in skipped.message
    assert "builders" in skipped.message


def test_extra_platforms_given_as_nix_option_makes_the_other_system_buildable(tmp_path, system):
    # The fixtures' builder is /bin/sh, which runs whatever the derivation's
    # system says, so declaring the other system an extra platform builds it.
    other = other_system(system)
    result, cases = build(tmp_path, "builds", "--attr", "hello", "--nix-option", "extra-platforms", other)
    assert result.returncode == 0, result.stderr
    assert cases[f"build.hello.{other}"].outcome == "pass"


def test_failed_build_names_the_derivation_and_carries_the_log_tail_without_ansi(tmp_path, system):
    result, cases = build(tmp_path, "check-fails", "--attr", "broken", "--system", system)
    assert result.returncode == 1
    case = cases[f"build.broken.{system}"]
    assert case.outcome == "fail"
    assert case.message == "builder for broken-package failed"
    assert "--- nix log /nix/store/" in case.details
    assert "FAILED: expected 4 guests, found 3" in case.details
    assert "\x1b" not in case.details and "[31m" not in case.details
    assert "some builds failed" in result.stderr


def test_a_package_that_does_not_evaluate_fails_with_the_message(tmp_path, system):
    result, cases = build(tmp_path, "eval-fails", "--attr", "unevaluable", "--system", system)
    assert result.returncode == 1
    case = cases[f"build.unevaluable.{system}"]
    assert case.outcome == "fail"
    assert case.message == "does not evaluate: fixture package deliberately does not evaluate"


def test_build_time_is_measured(tmp_path, system):
    _, cases = build(tmp_path, "builds", "--attr", "greeting", "--system", system)
    # Seconds: the build ran inside the command's timeout (milliseconds would be a thousand times more; a build
    # waiting for a busy store may take its time, so no tighter bound).
    assert 0 < cases[f"build.greeting.{system}"].seconds < CCVM_TIMEOUT_S


def no_nix_env() -> dict[str, str]:
    env = offline_env(PATH=str(Path(sys.executable).parent / "no-such-dir"))
    env.pop("CCVM_NIX", None)
    return env


def test_without_nix_every_target_is_skipped_with_the_reason(tmp_path):
    result, cases = build(tmp_path, "builds", "--attr", "hello", env=no_nix_env())
    assert result.returncode == 0, result.stderr
    assert {c.outcome for c in cases.values()} == {"skipped"}
    assert all("nix not found" in c.message for c in cases.values())


def test_without_nix_require_nix_fails(tmp_path):
    result, cases = build(tmp_path, "builds", "--attr", "hello", "--require", "nix", env=no_nix_env())
    assert result.returncode == 1
    assert {c.outcome for c in cases.values()} == {"fail"}
    assert all("--require nix" in c.message for c in cases.values())


def test_unknown_system_option_is_a_usage_error(tmp_path):
    result, _ = build(tmp_path, "builds", "--system", "linux")
    assert result.returncode == 2
    assert "--system 'linux'" in result.stderr
    assert "Traceback" not in result.stderr


# builds.yaml ------------------------------------------------------------------------------------


def test_project_builds_yaml_declares_ccvm_for_both_systems():
    builds = load_matrix(ROOT / "matrix").builds
    assert builds.flake == "."
    assert BuildTarget(attr="ccvm", system="x86_64-linux") in builds.targets
    assert BuildTarget(attr="ccvm", system="aarch64-linux") in builds.targets


def matrix_with_builds(tmp_path: Path, text: str) -> Path:
    import shutil

    root = tmp_path / "matrix"
    shutil.copytree(ROOT / "matrix", root)
    (root / "builds.yaml").write_text(text)
    return root


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            "flake: .\ntargetz:\n  ccvm: [x86_64-linux]\n",
            2,
            "unknown key 'targetz' in builds.yaml (did you mean 'targets'?)",
        ),
        ("targets:\n  ccvm:\n    - x86_64-linux\n    - riscv64-linux\n", 4, "unknown system 'riscv64-linux'"),
        ("targets:\n  ccvm: [x86_64-linux, x86_64-linux]\n", 2, "listed twice"),
        ("targets:\n  ccvm: x86_64-linux\n", 2, "must list its systems"),
        ("timeout: soon\ntargets:\n  ccvm: [x86_64-linux]\n", 1, "timeout must be a positive number"),
        *(
            (f"timeout: {value}\ntargets:\n  ccvm: [x86_64-linux]\n", 1, "at most 604800 (7 days)")
            for value in (".inf", ".nan", "1e300", "true")
        ),
        ("flake: .\n", 1, "needs `targets`"),
    ],
)
def test_bad_builds_yaml_names_file_and_line(tmp_path, text, line, words):
    root = matrix_with_builds(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_matrix(root)
    assert str(caught.value).startswith(f"{root / 'builds.yaml'}:{line}: ")
    assert words in str(caught.value)


def test_bad_builds_yaml_exits_2_with_one_line(tmp_path):
    root = matrix_with_builds(tmp_path, "targets:\n  ccvm: [x86_64-linux, sparc-linux]\n")
    result = run_ccvm("--matrix", str(root), "build")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"ccvm: error: {root / 'builds.yaml'}:2: unknown system 'sparc-linux'")
    assert lines[0].endswith("choose from x86_64-linux, aarch64-linux")


# target selection and parsing helpers -----------------------------------------------------------

BUILDS = Builds(
    targets=(
        BuildTarget(attr="ccvm", system="x86_64-linux"),
        BuildTarget(attr="ccvm", system="aarch64-linux"),
        BuildTarget(attr="docs", system="x86_64-linux"),
    )
)


def test_select_targets_narrows_by_attr_and_system_and_adds_undeclared_attrs():
    assert select_targets(BUILDS, [], []) == BUILDS.targets
    assert select_targets(BUILDS, ["docs"], []) == (BuildTarget(attr="docs", system="x86_64-linux"),)
    assert select_targets(BUILDS, [], ["aarch64-linux"]) == (BuildTarget(attr="ccvm", system="aarch64-linux"),)
    assert select_targets(BUILDS, ["hello"], ["x86_64-linux"]) == (BuildTarget(attr="hello", system="x86_64-linux"),)
    assert len(select_targets(BUILDS, ["hello"], [])) == 2
    with pytest.raises(UsageError):
        select_targets(BUILDS, ["docs"], ["aarch64-linux"])


def test_nix_argv_adds_the_feature_flags_and_each_option():
    nix = Nix(path="/usr/bin/nix", version="nix (Nix) 2.8.0", options=(("substituters", ""), ("cores", "2")))
    assert nix.argv("build", "x") == [
        "/usr/bin/nix",
        "--extra-experimental-features",
        "nix-command flakes",
        "--option",
        "substituters",
        "",
        "--option",
        "cores",
        "2",
        "build",
        "x",
    ]


def test_parse_version_and_store_names():
    assert parse_version("nix (Nix) 2.8.0") == (2, 8, 0)
    assert parse_version("nix (Nix) 2.24") == (2, 24)
    assert parse_version("no version") is None
    assert store_name("/nix/store/59571rpv6yz5z7ml0wrs7wjs7rbp9m3z-broken-package.drv") == "broken-package"
    assert store_name("/nix/store/59571rpv6yz5z7ml0wrs7wjs7rbp9m3z-hello-2.12") == "hello-2.12"


def test_failed_derivations_reads_the_builder_lines():
    text = (
        "error: builder for '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a.drv' failed with exit code 1;\n"
        "error: builder for '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b.drv' failed with exit code 2;\n"
    )
    assert [store_name(d) for d in failed_derivations(text)] == ["a", "b"]


def test_builder_systems_reads_inline_entries_and_machines_files(tmp_path):
    machines = tmp_path / "machines"
    machines.write_text("# remote arm box\nssh://arm aarch64-linux,armv7l-linux /key 4\n\nssh://x - - 1\n")
    spec = f"ssh-ng://big x86_64-linux /k 8 1 kvm ; @{machines} ; @{tmp_path / 'absent'}"
    assert builder_systems(spec) == ("x86_64-linux", "aarch64-linux", "armv7l-linux")
    assert builder_systems("") == ()


def test_error_summary_takes_the_first_error_line_and_hints_at_untracked_files():
    assert error_summary("evaluating...\nerror (ignored): error: boom\n  at x\nerror: later") == "boom"
    untracked = (
        "error: getting status of '/nix/store/i1sc719nx9a1b7shx2s3qh2r9cwp4s28-source/flake.nix': "
        "No such file or directory"
    )
    assert error_summary(untracked).endswith("(a git flake sees only tracked files: git add flake.nix)")


def test_inputs_that_cannot_be_fetched_fail_every_target_after_one_try(tmp_path, system, nix_bin):
    """Found adopting ccvm on a real project offline: each target evaluated the flake (twice) to fail alike."""
    calls, shim = tmp_path / "calls", tmp_path / "bin" / "nix"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {nix_bin} "$@"\n')
    shim.chmod(0o755)
    env = offline_env(CCVM_NIX=str(shim))
    result, cases = build(
        tmp_path, "unfetchable-input", "--attr", "agent", "--attr", "runner", "--system", system, env=env
    )
    assert result.returncode == 1, result.stdout + result.stderr
    agent, runner = cases[f"build.agent.{system}"], cases[f"build.runner.{system}"]
    assert agent.outcome == runner.outcome == "fail"
    assert agent.message == runner.message
    assert agent.message.startswith("the flake's inputs cannot be fetched or locked: ") and "127.0.0.2" in agent.message
    assert "127.0.0.2" in agent.details and runner.details == f"Nix's output is with build.agent.{system}"
    asked = [line for line in calls.read_text().splitlines() if "unfetchable-input" in line]  # about this flake
    assert len(asked) == 1 and " flake metadata " in f" {asked[0]} ", asked
