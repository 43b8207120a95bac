"""ccvm flake-check against real Nix on the fixture flakes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from nixtest import (
    flake_copy,
    host_system,
    offline_env,
    other_system,
    read_junit,
    run_ccvm,
    slow_eval_flake,
)

from ccvm.checks.nix.flake_check import error_blocks, parse_check_output, whole_run_case


@pytest.fixture
def system(nix_bin: str) -> str:
    """The system nix builds for here (asking for nix_bin puts the test in the nix tier)."""
    return host_system(nix_bin)


def flake_check(tmp_path: Path, fixture: str, *args: str, env: dict | None = None):
    junit = tmp_path / "flake-check.xml"
    result = run_ccvm("flake-check", "--flake", flake_copy(tmp_path, fixture), "--junit", str(junit), *args, env=env)
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
