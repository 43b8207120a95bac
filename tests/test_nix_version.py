"""The Nix version against what current nixpkgs needs (2.18): doctor, the preflight
of build, flake-check and init, and a nixpkgs evaluation that fails because this
Nix is too old, reported as that.

The real runs use two fixture flakes: needs-newer-nix (a package set that refuses
an older Nix as nixpkgs does) and newer-lock (a flake.lock with an attribute Nix
2.8 does not know).  Which half of each pair runs depends on the Nix here; the
other half skips, saying which Nix it needs (tests/tiers.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import tiers
from nixtest import flake_copy, host_system, offline_env, read_junit, run_ccvm
from tiers import require_nix_version

from ccvm.nixtool import needs_newer_nix, nixpkgs_note, older_than_nixpkgs_needs

OLD = (2, 18)  # current nixpkgs needs this or newer
NIXPKGS_ABORT = """\
error: evaluation aborted with the following error message: '

This version of Nixpkgs requires Nix >= 2.18, please upgrade:

- If you are running NixOS, `nixos-rebuild' can be used to upgrade your system.
'
"""


@pytest.mark.parametrize(
    ("version", "old"),
    [
        ("nix (Nix) 2.8.0", True),
        ("nix (Nix) 2.17.1", True),
        ("nix (Nix) 2.18.0", False),
        ("nix (Nix) 2.26.3", False),
        ("nix (Lix, like Nix) 2.91.1", False),
    ],
)
def test_the_nixpkgs_note_only_for_a_nix_older_than_2_18(version, old):
    assert older_than_nixpkgs_needs(version) is old
    note = nixpkgs_note(version)
    if not old:
        assert note is None
        return
    assert note.startswith(f"{version} is older than 2.18, which current nixpkgs needs")
    assert "Debian 13's nix-bin is 2.26" in note and "upstream installer" in note
    assert "\n" not in note


def test_nixpkgs_refusing_this_nix_is_said_as_that_in_one_line():
    line = needs_newer_nix("nix (Nix) 2.8.0", NIXPKGS_ABORT)
    assert line.startswith("nix (Nix) 2.8.0 cannot evaluate this nixpkgs (This version of Nixpkgs requires Nix >= 2.18")
    assert "current nixpkgs needs Nix 2.18 or newer; get one: Debian 13's nix-bin" in line and "\n" not in line


def test_a_lock_from_a_newer_nix_is_too_old_only_for_an_old_nix():
    error = "error: unsupported tarball input attribute 'lastModified'\n"
    line = needs_newer_nix("nix (Nix) 2.8.0", error)
    assert line.startswith("nix (Nix) 2.8.0 cannot read this flake.lock, written by a newer Nix")
    assert "(unsupported tarball input attribute 'lastModified')" in line
    assert needs_newer_nix("nix (Nix) 2.26.3", error) is None  # a newer Nix's error is something else
    assert needs_newer_nix("nix (Nix) 2.8.0", "error: attribute 'x' missing") is None


def test_doctor_names_this_nix_and_what_current_nixpkgs_needs(nix_bin):
    result = run_ccvm("doctor", "--no-probe", env=offline_env())
    assert result.returncode == 0, result.stdout + result.stderr
    version = subprocess.run([nix_bin, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    assert f"  version: {version} ({nix_bin})" in result.stdout
    notes = [line for line in result.stdout.splitlines() if line.startswith("  note: ")]
    if older_than_nixpkgs_needs(version):  # Debian 12's 2.8 here
        assert notes == [f"  note: {nixpkgs_note(version)}"]
        assert "is older than 2.18, which current nixpkgs needs" in notes[0]
    else:
        assert notes == []


def test_build_and_flake_check_say_the_version_first(tmp_path, nix_bin):
    result = run_ccvm(
        "flake-check", "--flake", flake_copy(tmp_path, "warnings-clean"), "--junit", str(tmp_path / "fc.xml")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    version = subprocess.run([nix_bin, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{version} (")
    assert (lines[1] == nixpkgs_note(version)) is older_than_nixpkgs_needs(version)


def test_init_says_which_nix_reads_the_flake(tmp_path, nix_bin):
    project = Path(flake_copy(tmp_path, "warnings-clean").removeprefix("path:"))
    result = run_ccvm("init", "--root", str(project), env=offline_env())
    assert result.returncode == 0, result.stdout + result.stderr
    version = subprocess.run([nix_bin, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    nix_lines = [line for line in result.stdout.splitlines() if line.startswith("nix: ")]
    note = nixpkgs_note(version)
    assert nix_lines == [f"nix: {version} ({nix_bin})", *([f"nix: {note}"] if note else [])]


def flake_check(tmp_path: Path, fixture: str):
    junit = tmp_path / "fc.xml"
    result = run_ccvm("flake-check", "--flake", flake_copy(tmp_path, fixture), "--junit", str(junit))
    return result, (read_junit(junit) if junit.exists() else {})


def build_default(tmp_path: Path, fixture: str):
    junit = tmp_path / "build.xml"
    args = ("--attr", "default", "--system", "host", "--junit", str(junit))
    result = run_ccvm("build", "--flake", flake_copy(tmp_path, fixture), *args)
    return result, (read_junit(junit) if junit.exists() else {})


def test_nixpkgs_refusing_an_old_nix_is_reported_as_that_not_as_a_failure_of_the_flake(tmp_path, nix_bin):
    require_nix_version(nix_bin, below=OLD, why="the fixture refuses only a Nix older than 2.18")
    system = host_system(nix_bin)
    result, cases = flake_check(tmp_path, "needs-newer-nix")
    assert result.returncode == 1
    for name in ("flake-check.evaluate", f"flake-check.{system}.hello"):
        assert cases[name].outcome == "fail"
        assert "cannot evaluate this nixpkgs (This version of Nixpkgs requires Nix >= 2.18" in cases[name].message
        assert "current nixpkgs needs Nix 2.18 or newer" in cases[name].message
    result, cases = build_default(tmp_path / "build", "needs-newer-nix")
    assert result.returncode == 1
    message = cases[f"build.default.{system}"].message
    assert "cannot evaluate this nixpkgs" in message and not message.startswith(("does not evaluate", "nix build"))


def test_the_nixpkgs_check_passes_on_a_new_enough_nix(tmp_path, nix_bin):
    require_nix_version(nix_bin, at_least=OLD, why="the fixture evaluates only under Nix 2.18 or newer")
    result, cases = flake_check(tmp_path, "needs-newer-nix")
    assert result.returncode == 0, result.stdout + result.stderr
    assert cases[f"flake-check.{host_system(nix_bin)}.hello"].outcome == "pass"


def test_a_lock_written_by_a_newer_nix_is_reported_as_this_nix_being_too_old(tmp_path, nix_bin):
    require_nix_version(nix_bin, below=OLD, why="Nix 2.18 and newer read this lock")
    result, cases = flake_check(tmp_path, "newer-lock")
    assert result.returncode == 1
    assert list(cases) == ["flake-check.evaluate"]
    message = cases["flake-check.evaluate"].message
    assert "cannot read this flake.lock, written by a newer Nix (unsupported tarball input attribute" in message


# The skip policy for a test that needs a newer (or an older) Nix: a stand-in nix prints the version,
# since only one real Nix is installed here.


def stand_in_nix(tmp_path: Path, version: str) -> str:
    nix = tmp_path / "nix"
    nix.write_text(f"#!/bin/sh\necho 'nix (Nix) {version}'\n")
    nix.chmod(0o755)
    return str(nix)


def test_a_test_needing_a_newer_nix_skips_saying_which_and_where_from(tmp_path, monkeypatch):
    monkeypatch.setattr(tiers, "SUITE_IN_CI", False)
    nix = stand_in_nix(tmp_path, "2.8.0")
    with pytest.raises(
        pytest.skip.Exception, match=r"needs Nix 2\.23 or newer \(builtins\.warn\); this is Nix 2\.8\.0"
    ):
        require_nix_version(nix, at_least=(2, 23), why="builtins.warn")
    require_nix_version(stand_in_nix(tmp_path, "2.26.3"), at_least=(2, 23), why="builtins.warn")  # runs


def test_under_ci_it_fails_only_where_the_distribution_has_that_nix(tmp_path, monkeypatch):
    monkeypatch.setattr(tiers, "SUITE_IN_CI", True)
    nix = stand_in_nix(tmp_path, "2.8.0")
    monkeypatch.setattr(tiers, "distribution_nix_version", lambda: (2, 8, 0))  # Debian 12
    with pytest.raises(pytest.skip.Exception, match="Debian 12 has 2.8"):
        require_nix_version(nix, at_least=(2, 18), why="current nixpkgs")
    monkeypatch.setattr(tiers, "distribution_nix_version", lambda: (2, 26, 3))  # Debian 13: setup should have
    with pytest.raises(pytest.fail.Exception, match="CI is set and the distribution has Nix 2.26.3"):
        require_nix_version(nix, at_least=(2, 18), why="current nixpkgs")


def test_a_test_about_an_older_nix_skips_on_a_newer_one(tmp_path, monkeypatch):
    monkeypatch.setattr(tiers, "SUITE_IN_CI", True)
    with pytest.raises(pytest.skip.Exception, match=r"about a Nix older than 2\.18 \(old locks\); this is Nix 2\.26"):
        require_nix_version(stand_in_nix(tmp_path, "2.26.3"), below=(2, 18), why="old locks")
