"""ccvm flake-check against real Nix on the fixture flakes."""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

import pytest
from nixtest import (
    ROOT,
    flake_copy,
    host_system,
    offline_env,
    other_system,
    read_junit,
    run_ccvm,
    slow_eval_flake,
)
from tiers import require_nix_version

from ccvm.checks.nix import eval_warnings
from ccvm.checks.nix.flake_check import _warning_suites, error_blocks, parse_check_output, whole_run_case


@pytest.fixture
def system(nix_bin: str) -> str:
    """The system nix builds for here (asking for nix_bin puts the test in the nix tier)."""
    return host_system(nix_bin)


def flake_check(tmp_path: Path, fixture: str, *args: str, env: dict | None = None, matrix: Path | None = None):
    junit = tmp_path / "flake-check.xml"
    before = ("--matrix", str(matrix)) if matrix else ()
    flake = flake_copy(tmp_path, fixture)
    result = run_ccvm(*before, "flake-check", "--flake", flake, "--junit", str(junit), *args, env=env)
    return result, (read_junit(junit) if junit.exists() else {})


def test_passing_flake_one_case_per_check_other_system_skipped(tmp_path, system):
    result, cases = flake_check(tmp_path, "builds")
    assert result.returncode == 0, result.stderr
    other = other_system(system)
    assert set(cases) == {
        "flake-check.evaluate",
        f"flake-check.{system}.greeting-says-hello",
        f"flake-check.{other}.greeting-says-hello",
    }
    assert cases["flake-check.evaluate"].outcome == "pass"
    assert cases[f"flake-check.{system}.greeting-says-hello"].outcome == "pass"
    skipped = cases[f"flake-check.{other}.greeting-says-hello"]
    assert skipped.outcome == "skipped"
    assert f"builds only this host's system ({system})" in skipped.message


def test_failing_check_is_named_from_the_builder_line_with_its_log(tmp_path, system):
    result, cases = flake_check(tmp_path, "check-fails")
    assert result.returncode == 1
    assert cases[f"flake-check.{system}.passes"].outcome == "pass"
    failed = cases[f"flake-check.{system}.fails-with-log"]
    assert failed.outcome == "fail"
    assert failed.message == "builder for fails-with-log failed"
    assert "step 1: preparing" in failed.details
    assert "FAILED: expected 4 guests, found 3" in failed.details
    assert "\x1b" not in failed.details and "[31m" not in failed.details
    assert cases["flake-check.evaluate"].outcome == "pass"  # everything evaluated


def test_checks_that_do_not_evaluate_fail_with_their_message(tmp_path, system):
    result, cases = flake_check(tmp_path, "eval-fails")
    assert result.returncode == 1
    assert cases[f"flake-check.{system}.fine"].outcome == "pass"
    thrown = cases[f"flake-check.{system}.thrown"]
    assert (thrown.outcome, thrown.message) == ("fail", "does not evaluate: fixture check deliberately throws")
    missing = cases[f"flake-check.{system}.missing-attr"]
    assert (missing.outcome, missing.message) == ("fail", "does not evaluate: attribute 'guestImage' missing")
    # Evaluation errors count on every system, built here or not.
    assert cases[f"flake-check.{other_system(system)}.thrown"].outcome == "fail"
    # The package output that does not evaluate belongs to no check: the evaluate case carries it.
    evaluate = cases["flake-check.evaluate"]
    assert evaluate.outcome == "fail"
    assert "fixture package deliberately does not evaluate" in evaluate.message


def test_a_flake_that_does_not_parse_is_one_failed_case(tmp_path, system):
    result, cases = flake_check(tmp_path, "unparsable")
    assert result.returncode == 1
    assert list(cases) == ["flake-check.evaluate"]
    assert cases["flake-check.evaluate"].outcome == "fail"
    assert "syntax error" in cases["flake-check.evaluate"].message
    assert "Traceback" not in result.stderr


def test_nix_options_reach_every_nix_call(tmp_path, system):
    # `--nix-option system OTHER` makes Nix treat the other system as its own:
    # show-config and flake check both see it, so the other system's check is
    # built (the fixture's /bin/sh builder runs whatever the system says) and
    # this host's is skipped.
    other = other_system(system)
    result, cases = flake_check(tmp_path, "builds", "--nix-option", "system", other)
    assert result.returncode == 0, result.stderr
    assert cases[f"flake-check.{other}.greeting-says-hello"].outcome == "pass"
    assert cases[f"flake-check.{system}.greeting-says-hello"].outcome == "skipped"


def no_nix_env() -> dict[str, str]:
    env = offline_env(PATH=str(Path(sys.executable).parent / "no-such-dir"))
    env.pop("CCVM_NIX", None)
    return env


def test_without_nix_skipped_or_failed_when_required(tmp_path):
    result, cases = flake_check(tmp_path, "builds", env=no_nix_env())
    assert result.returncode == 0
    assert cases["flake-check.evaluate"].outcome == "skipped"
    assert "nix not found" in cases["flake-check.evaluate"].message
    result, cases = flake_check(tmp_path / "again", "builds", "--require", "nix", env=no_nix_env())
    assert result.returncode == 1
    assert cases["flake-check.evaluate"].outcome == "fail"


# Parsing Nix's output (text as Nix 2.8 prints it with --keep-going --show-trace) ------------------

SAMPLE = """\
evaluating flake...
error (ignored): error: deliberate

       … while checking the derivation 'checks.x86_64-linux.thrown'

       at /nix/store/x-source/flake.nix:8:7:
error (ignored): error: flake attribute 'packages.x86_64-linux.odd' is not a derivation
running flake checks...
building '/nix/store/qsa2c85kp767zmb50vdvar4j6p1391n2-bad-check.drv'...
error: builder for '/nix/store/qsa2c85kp767zmb50vdvar4j6p1391n2-bad-check.drv' failed with exit code 3;
       last 2 log lines:
       > some log line
error: 1 dependencies of derivation '/nix/store/jgmlzm0akk656xivx7slf955gyvyz9q2-uses-bad.drv' failed to build
error: build of '/nix/store/qsa2c85kp767zmb50vdvar4j6p1391n2-bad-check.drv' failed
"""


def test_error_blocks_keep_indented_lines_with_their_error():
    blocks = error_blocks(SAMPLE)
    assert len(blocks) == 5
    assert "while checking the derivation 'checks.x86_64-linux.thrown'" in blocks[0]
    assert blocks[2].endswith("> some log line")


def test_parse_check_output_sorts_errors_by_owner():
    parsed = parse_check_output(SAMPLE)
    assert list(parsed.eval_errors) == [("x86_64-linux", "thrown")]
    assert parsed.failed_builders == ["/nix/store/qsa2c85kp767zmb50vdvar4j6p1391n2-bad-check.drv"]
    assert parsed.dependency_failed == {"/nix/store/jgmlzm0akk656xivx7slf955gyvyz9q2-uses-bad.drv"}
    assert len(parsed.other_errors) == 1 and "'packages.x86_64-linux.odd' is not a derivation" in parsed.other_errors[0]


def test_unexplained_nix_failure_fails_the_evaluate_case():
    case = whole_run_case(1, "something Nix has never printed before\n", parse_check_output(""), 1.0, 60.0)
    assert case.outcome == "fail"
    assert case.message == "nix flake check exited 1: something Nix has never printed before"
    assert whole_run_case(0, "", parse_check_output(""), 1.0, 60.0).outcome == "pass"
    assert "timed out" in whole_run_case(None, "", parse_check_output(""), 1.0, 60.0).message


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--timeout", "nan", "'nan' is not a finite number of seconds"),
        ("--timeout", "inf", "'inf' is not a finite number of seconds"),
        ("--connect-timeout", "nan", "'nan' is not a finite number of seconds"),
        ("--timeout", "1e300", "must be at most 604800 seconds (7 days)"),
        ("--timeout", "0", "must be more than 0"),
    ],
)
def test_non_finite_or_huge_timeouts_are_refused_in_one_line(option, value, words):
    result = run_ccvm("flake-check", option, value)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"argument {option}: {words}" in lines[0]


def test_listing_checks_past_the_timeout_is_reported_as_timed_out(tmp_path, nix_bin):
    junit = tmp_path / "fc.xml"
    with slow_eval_flake(tmp_path) as flake:
        result = run_ccvm("flake-check", "--flake", flake, "--timeout", "3", "--junit", str(junit))
    assert result.returncode == 1, result.stderr
    case = read_junit(junit)["flake-check.evaluate"]
    assert case.outcome == "fail"
    assert case.message == "listing the flake's checks timed out after 3s and was stopped"


# Evaluation warnings: nix flake check must be warning-clean ---------------------------------------------------


def test_a_warning_free_flake_has_no_warning_cases(tmp_path, system):
    result, cases = flake_check(tmp_path, "warnings-clean")
    assert result.returncode == 0, result.stderr
    assert not [name for name in cases if name.startswith("flake-check.warning.")]
    assert cases[f"flake-check.{system}.clean"].outcome == "pass"


def test_an_unknown_flake_output_fails_on_that_warning(tmp_path, system):
    result, cases = flake_check(tmp_path, "warnings-unknown-output")
    assert result.returncode == 1, result.stderr
    warning = cases["flake-check.warning.unknown-output-guestimages"]
    assert (warning.outcome, warning.message) == ("fail", "warning: unknown flake output 'guestImages'")
    assert "warning-clean" in warning.details and "warnings: allow" in warning.details
    assert cases[f"flake-check.{system}.builds"].outcome == "pass"  # the check itself is fine
    assert cases["flake-check.evaluate"].outcome == "pass"


ALIAS_SUITE = "flake-check.warning.guestagent-has-been-renamed-to-guest-agent-use-pkgs-guest"
ALIAS_MESSAGE = "guestAgent has been renamed to guest-agent; use pkgs.guest-agent (printed 2 times)"


def test_a_deprecated_alias_warns_through_a_trace_on_a_nix_without_builtins_warn(tmp_path, nix_bin, system):
    require_nix_version(nix_bin, below=(2, 23), why="builtins.warn came in Nix 2.23; before it, lib.warn traces")
    result, cases = flake_check(tmp_path, "warnings-deprecated-alias")
    assert result.returncode == 1, result.stderr
    warning = cases[ALIAS_SUITE]
    assert warning.outcome == "fail"
    assert warning.message == f"trace: evaluation warning: {ALIAS_MESSAGE}"  # the ANSI colours removed
    assert cases[f"flake-check.{system}.agent"].outcome == "pass"


def test_a_deprecated_alias_warns_through_builtins_warn_on_a_newer_nix(tmp_path, nix_bin):
    require_nix_version(nix_bin, at_least=(2, 23), why="builtins.warn, which nixpkgs' lib.warn uses where it exists")
    result, cases = flake_check(tmp_path, "warnings-deprecated-alias")
    assert result.returncode == 1, result.stderr
    assert cases[ALIAS_SUITE].message == f"evaluation warning: {ALIAS_MESSAGE}"


def matrix_with_builds(tmp_path: Path, flake_check_section: str) -> Path:
    """ccvm's own matrix with a flake_check section added to builds.yaml."""
    matrix = tmp_path / "matrix"
    shutil.copytree(ROOT / "matrix", matrix)
    builds = matrix / "builds.yaml"
    builds.write_text(builds.read_text() + flake_check_section)
    return matrix


def test_builds_yaml_can_allow_warnings_then_they_are_listed_not_counted(tmp_path, system):
    matrix = matrix_with_builds(tmp_path, "flake_check:\n  warnings: allow\n")
    result, cases = flake_check(tmp_path, "warnings-unknown-output", matrix=matrix)
    assert result.returncode == 0, result.stderr
    assert not [name for name in cases if name.startswith("flake-check.warning.")]
    junit = (tmp_path / "flake-check.xml").read_text()
    assert "warnings allowed (matrix/builds.yaml: flake_check: {warnings: allow}), not counted:" in junit
    assert "warning: unknown flake output 'guestImages'" in junit


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ("flake_check:\n  warnings: ignore\n", "flake_check: warnings must be fail"),
        ("flake_check:\n  warning: allow\n", "unknown key 'warning' in flake_check"),
        ("flake_check: allow\n", "flake_check"),
    ],
)
def test_a_bad_flake_check_rule_is_one_line_naming_builds_yaml(tmp_path, section, words):
    matrix = matrix_with_builds(tmp_path, section)
    result = run_ccvm("--matrix", str(matrix), "flake-check", "--flake", "path:/nonexistent")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "builds.yaml:" in line and words in line


def test_an_unreachable_cache_is_named_as_offline_noise_not_counted(tmp_path, system):
    flake = flake_copy(tmp_path, "warnings-clean")
    nix_file = Path(flake.removeprefix("path:")) / "flake.nix"
    # A name of its own, so the check is not in the store yet and Nix asks the substituter for it.
    nix_file.write_text(nix_file.read_text().replace("clean-check", f"clean-check-{uuid.uuid4().hex[:12]}"))
    # Loopback, port 9 (discard): nothing listens, the connection is refused at once.
    noisy = offline_env(NIX_CONFIG="sandbox = false\nsubstituters = http://127.0.0.2:9\ndownload-attempts = 1\n")
    junit = tmp_path / "fc.xml"
    result = run_ccvm("flake-check", "--flake", flake, "--junit", str(junit), env=noisy)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = read_junit(junit)
    assert not [name for name in cases if name.startswith("flake-check.warning.")]
    named = "offline noise, not counted as warnings: substituter http://127.0.0.2:9 unreachable"
    assert named in junit.read_text() and named in result.stdout  # and on the console


# Sorting Nix's stderr (text as Nix prints it; the builtins.warn line as Nix 2.23 and newer print it) --------

NOISY_OUTPUT = """\
warning: Git tree '/src/project' is dirty
warning: not writing modified lock file of flake 'path:/src/project':
• Added input 'nixpkgs':
    'path:/stub?lastModified=1&narHash=sha256-x' (2026-12-04)
evaluating flake...
warning: unknown flake output 'guestImages'
trace: \x1b[1;35mevaluation warning:\x1b[0m guestAgent has been renamed to guest-agent
trace: \x1b[1;35mevaluation warning:\x1b[0m guestAgent has been renamed to guest-agent
evaluation warning: nixfmt-rfc-style is now the same as pkgs.nixfmt which should be used instead.
trace: warning: an older nixpkgs' lib.warn
trace: just debugging
warning: flake output attribute 'defaultPackage' is deprecated; use 'packages.<system>.default' instead
running flake checks...
warning: error: unable to download 'https://cache.nixos.org/nix-cache-info': Couldn't resolve host name (6); \
retrying in 281 ms
warning: unable to download 'https://cache.nixos.org/nix-cache-info': Couldn't resolve host name (6)
warning: you don't have Internet access; disabling some network-dependent features
warning: The check omitted these incompatible systems: aarch64-linux
Use '--all-systems' to check all.
warning: input 'utils' has an override for a non-existent input 'nixpkgs'
"""


def test_warnings_are_sorted_from_offline_noise_and_notices():
    found = eval_warnings.sort_output(NOISY_OUTPUT)
    kinds = [(w.kind, w.subject, w.count) for w in found.warnings]
    assert kinds == [
        (eval_warnings.UNKNOWN_OUTPUT, "guestImages", 1),
        (eval_warnings.TRACE, "guestAgent has been renamed to guest-agent", 2),
        (eval_warnings.EVALUATION, "nixfmt-rfc-style is now the same as pkgs.nixfmt which should be used instead.", 1),
        (eval_warnings.TRACE, "an older nixpkgs' lib.warn", 1),
        (eval_warnings.DEPRECATED_OUTPUT, "defaultPackage", 1),
        (eval_warnings.OTHER, "input 'utils' has an override for a non-existent input 'nixpkgs'", 1),
    ]
    assert found.offline == {"substituter https://cache.nixos.org unreachable": 2, "no network access": 1}
    assert found.offline_summary() == (
        "offline noise, not counted as warnings: substituter https://cache.nixos.org unreachable (2 lines); "
        "no network access (1 line)"
    )
    assert found.notices == [
        "warning: Git tree '/src/project' is dirty",
        "warning: not writing modified lock file of flake 'path:/src/project':",
        "trace: just debugging",
        "warning: The check omitted these incompatible systems: aarch64-linux",
    ]


def test_the_same_warning_has_the_same_suite_name_from_a_trace_or_builtins_warn():
    traced, warned = eval_warnings.sort_output(
        "trace: \x1b[1;35mevaluation warning:\x1b[0m x was renamed to y\nevaluation warning: x was renamed to y\n"
    ).warnings
    assert eval_warnings.slug(traced) == eval_warnings.slug(warned) == "x-was-renamed-to-y"


def test_warnings_alike_in_their_first_words_get_suites_of_their_own():
    words = "x " * 40
    found = eval_warnings.sort_output(f"evaluation warning: {words}one\nevaluation warning: {words}two\n")
    suites = _warning_suites(found.warnings)
    assert len({suite.name for suite in suites}) == 2
    assert suites[1].name == f"{suites[0].name}-2"
    assert [suite.cases[0].message for suite in suites] == [w.text for w in found.warnings]
