"""The Nix preflight: broken set-ups found before nix runs, one line each, exit status 3.

The build-users and configuration cases run real Nix with a configuration
that breaks it (NIX_CONFIG).  The unwritable-store case runs the real
preflight as an unprivileged user when this test runs as root (a forked
child drops to uid 65534); the rest of the store decisions are unit tests
with the file-system facts injected, because a read-only store or an
unprivileged user with a daemon cannot be created here.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from nixtest import flake_copy, offline_env, run_ccvm

from ccvm.checks.nix import preflight
from ccvm.checks.nix.preflight import StoreFacts, store_mode, store_problems
from ccvm.nixtool import find_nix

NO_GROUP = "ccvm-no-such-group"
UNPRIVILEGED_UID = 65534  # nobody

ROOT_LOCAL = StoreFacts(
    euid=0,
    store="auto",
    store_dir="/nix/store",
    state_dir="/nix/var/nix",
    socket="/nix/var/nix/daemon-socket/socket",
    store_dir_writable=True,
    state_dir_writable=True,
    socket_exists=False,
    build_users_group="nixbld",
    group_members=("nixbld1", "nixbld2"),
)
USER = replace(ROOT_LOCAL, euid=1000, store_dir_writable=False, state_dir_writable=False)


def bad_group_env() -> dict[str, str]:
    return offline_env(NIX_CONFIG=f"{offline_env()['NIX_CONFIG']}build-users-group = {NO_GROUP}\n")


def only_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def as_root(nix_bin) -> None:
    if os.geteuid() != 0:
        pytest.skip("Nix uses build users only when it runs as root; this test is not root")


@pytest.mark.parametrize("command", ["build", "flake-check"])
def test_missing_build_users_group_is_one_line_and_exit_3(tmp_path, as_root, command):
    junit = tmp_path / "out.xml"
    flake = flake_copy(tmp_path, "builds")
    result = run_ccvm(command, "--flake", flake, "--junit", str(junit), env=bad_group_env())
    assert result.returncode == 3, result.stdout + result.stderr
    line = only_error_line(result.stderr)
    assert line.startswith(f"ccvm: error: nix build-users-group '{NO_GROUP}' does not exist")
    assert f"groupadd --system {NO_GROUP} && " in line and "useradd --system" in line
    assert not junit.exists()  # stopped before any testcase, not one failure per attribute


def test_missing_build_users_group_through_a_nix_conf_file(tmp_path, as_root):
    conf = tmp_path / "nix-conf"
    conf.mkdir()
    (conf / "nix.conf").write_text(f"sandbox = false\nsubstituters =\nbuild-users-group = {NO_GROUP}\n")
    env = offline_env(NIX_CONF_DIR=str(conf))
    env.pop("NIX_CONFIG")
    result = run_ccvm("build", "--flake", flake_copy(tmp_path, "builds"), "--junit", str(tmp_path / "b.xml"), env=env)
    assert result.returncode == 3, result.stderr
    assert f"'{NO_GROUP}' does not exist" in only_error_line(result.stderr)


def test_nixbld_group_names_the_setup_script():
    facts = replace(ROOT_LOCAL, group_members=None)
    (problem,) = store_problems(facts)
    assert "nix build-users-group 'nixbld' does not exist" in problem
    assert "bash .ci/setup" in problem and "groupadd --system nixbld" in problem


def test_empty_build_users_group():
    (problem,) = store_problems(replace(ROOT_LOCAL, group_members=()))
    assert "build-users-group 'nixbld' has no members" in problem
    assert "groupadd" not in problem and "bash .ci/setup" in problem and "useradd --system" in problem


@pytest.mark.parametrize(
    "facts",
    [
        replace(ROOT_LOCAL, group_members=None, store="daemon", socket_exists=True),  # the daemon's users count
        replace(ROOT_LOCAL, group_members=None, euid=1000, socket_exists=True, state_dir_writable=False),
        replace(ROOT_LOCAL, group_members=None, build_users_group=""),  # builds as root itself
        replace(ROOT_LOCAL, group_members=None, store="ssh-ng://builder"),
    ],
)
def test_build_users_matter_only_for_root_on_the_local_store(facts):
    assert store_problems(facts) == []


def test_a_bad_configuration_line_is_one_line_and_exit_3(tmp_path, nix_bin):
    result = run_ccvm(
        "flake-check", "--flake", flake_copy(tmp_path, "builds"), env=offline_env(NIX_CONFIG="experimental-features\n")
    )
    assert result.returncode == 3, result.stderr
    line = only_error_line(result.stderr)
    assert "nix rejects its configuration: error: illegal configuration line 'experimental-features'" in line
    assert "NIX_CONFIG" in line


def test_this_nix_accepts_the_feature_flags_ccvm_passes(nix_bin):
    nix = find_nix()
    assert preflight.features_problem(nix) is None


def test_doctor_notes_whether_the_users_own_config_enables_flakes(monkeypatch, nix_bin):
    monkeypatch.setenv("NIX_CONFIG", "experimental-features = nix-command flakes\n")
    assert preflight.own_config_note(find_nix()) == "your nix configuration enables nix-command and flakes"
    monkeypatch.setenv("NIX_CONFIG", "experimental-features = nix-command\n")
    assert "does not enable flakes (ccvm passes them itself)" in preflight.own_config_note(find_nix())
    monkeypatch.setenv("NIX_CONFIG", "experimental-features =\n")
    assert "does not enable nix-command flakes" in preflight.own_config_note(find_nix())


def test_doctor_lists_the_problem_and_exits_3(as_root):
    result = run_ccvm("doctor", "--no-probe", env=bad_group_env())
    assert result.returncode == 3
    assert f"  problem: nix build-users-group '{NO_GROUP}' does not exist" in result.stdout
    assert "ccvm: error: nix cannot build here: 1 problem(s)" in result.stderr


def test_doctor_passes_on_a_working_nix(nix_bin):
    result = run_ccvm("doctor", "--no-probe")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "can build here (store, build users, nix-command and flakes checked)" in result.stdout


def _problems_as(uid: int, home: str, queue) -> None:
    try:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        os.environ["HOME"] = home
        queue.put(preflight.problems(find_nix()))
    except BaseException as exc:  # the parent fails the test with it, rather than waiting
        queue.put(f"child failed: {exc!r}")


def _problems_unprivileged() -> list[str] | str:
    """The preflight's findings in a forked child running as nobody, with a home it owns."""
    with tempfile.TemporaryDirectory(prefix="ccvm-nobody-") as home:  # /tmp: reachable by nobody
        os.chown(home, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_problems_as, args=(UNPRIVILEGED_UID, home, queue))
        child.start()
        try:
            return queue.get(timeout=120)
        finally:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()


def test_unprivileged_user_without_a_daemon_is_told_to_start_one(nix_bin):
    """Real: the preflight in a process that cannot write the store (root drops to nobody)."""
    found = _problems_unprivileged() if os.geteuid() == 0 else preflight.problems(find_nix())
    assert isinstance(found, list), found
    facts = preflight.gather_facts({})
    if Path(facts.socket).is_socket():
        assert found == []  # the daemon is there: Nix goes through it
    else:
        assert len(found) == 1, found
        assert "cannot write /nix/store and /nix/var/nix and no nix-daemon listens on" in found[0]
        assert "bash .ci/setup" in found[0] and "systemctl start nix-daemon.socket" in found[0]


def test_unwritable_store_decisions():
    """Injected facts: a read-only store and a user with a daemon cannot be made here."""
    (problem,) = store_problems(USER)
    assert problem.startswith("this user (uid 1000) cannot write /nix/store and /nix/var/nix and no nix-daemon")
    assert store_mode(replace(USER, socket_exists=True)) == "daemon"
    assert store_problems(replace(USER, socket_exists=True)) == []
    (forced,) = store_problems(replace(USER, store="local", socket_exists=True))
    assert forced.endswith("build through the daemon: export NIX_REMOTE=daemon")
    (read_only,) = store_problems(replace(ROOT_LOCAL, store_dir_writable=False))
    assert "uid 0) cannot write /nix/store and no nix-daemon" in read_only
    (no_daemon,) = store_problems(replace(ROOT_LOCAL, store="daemon"))
    assert "build through the nix-daemon (store = daemon) but nothing listens on" in no_daemon
    # A store nobody can write hides the build-users problem: fix the first first.
    assert len(store_problems(replace(ROOT_LOCAL, store_dir_writable=False, group_members=None))) == 1


def test_gather_facts_reads_this_process(monkeypatch, tmp_path):
    monkeypatch.setenv("NIX_STORE_DIR", str(tmp_path / "not-yet" / "store"))  # created on first use
    monkeypatch.setenv("NIX_STATE_DIR", str(tmp_path / "state"))
    facts = preflight.gather_facts({"build-users-group": {"value": NO_GROUP}, "store": {"value": "auto"}})
    assert facts.store_dir_writable and facts.state_dir_writable
    assert facts.socket == f"{tmp_path}/state/daemon-socket/socket" and not facts.socket_exists
    assert facts.group_members is None
    assert facts.euid == os.geteuid()
