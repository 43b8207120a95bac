"""Attestations in temporary git repositories: where they live, what they
record, when they go stale; and the `ccvm attest` command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clirun import run_ccvm
from gitrepo import GitRepo, isolated_git_env

from ccvm.ci import attest, gitchange
from ccvm.errors import UsageError

pytestmark = pytest.mark.usefixtures("isolated_git")
SEED_MATRIX = Path(__file__).resolve().parent / "fixtures" / "seed-project" / "matrix"


@pytest.fixture
def repo(tmp_path) -> GitRepo:
    return GitRepo.create(tmp_path / "repo", files={".gitignore": "reports/\n", "src/console.py": "X = 1\n"})


def test_record_keeps_who_when_note_and_tree_in_the_git_dir(repo):
    repo.write("src/console.py", "X = 2\n")  # uncommitted: the attestation covers it
    tree = gitchange.tree_hash(repo.path)
    made, path = attest.record(repo.path, "tty", "  resized, vim, less, vi-mode: fine  ")
    assert path == repo.path / ".git" / "ccvm" / "attestations" / "tty" / f"{tree}.json"
    stored = json.loads(path.read_text())
    assert stored["tree"] == tree == made.tree
    assert (stored["name"], stored["email"]) == ("Ada Tester", "ada@example.test")
    assert stored["note"] == "resized, vim, less, vi-mode: fine"
    assert stored["at"].endswith("+00:00")
    assert attest.current(repo.path, "tty", tree) == made


def test_recording_does_not_touch_the_work_tree_or_index(repo):
    before = repo.git("status", "--porcelain", "--ignored")
    attest.record(repo.path, "tty", "checked")
    assert repo.git("status", "--porcelain", "--ignored") == before


def test_an_edit_makes_it_stale_and_undoing_the_edit_makes_it_current_again(repo):
    attest.record(repo.path, "tty", "checked")
    attested_tree = gitchange.tree_hash(repo.path)
    repo.write("src/console.py", "X = 3\n")
    edited_tree = gitchange.tree_hash(repo.path)
    assert attest.current(repo.path, "tty", edited_tree) is None
    assert attest.latest(repo.path, "tty").tree == attested_tree
    repo.write("src/console.py", "X = 1\n")
    assert attest.current(repo.path, "tty", gitchange.tree_hash(repo.path)) is not None


def test_a_new_untracked_file_makes_it_stale(repo):
    attest.record(repo.path, "tty", "checked")
    repo.write("src/extra.py", "\n")
    assert attest.current(repo.path, "tty", gitchange.tree_hash(repo.path)) is None


def test_a_corrupt_record_counts_as_absent(repo):
    _made, path = attest.record(repo.path, "tty", "checked")
    path.write_text("{not json")
    assert attest.current(repo.path, "tty", gitchange.tree_hash(repo.path)) is None


def test_empty_note_is_refused(repo):
    with pytest.raises(UsageError, match="--note must say what you checked"):
        attest.record(repo.path, "tty", "   ")


def test_missing_git_identity_is_refused(repo):
    repo.git("config", "--unset", "user.email")
    with pytest.raises(UsageError, match="git config user.email is not set"):
        attest.record(repo.path, "tty", "checked")


def test_unknown_kind_is_refused(repo):
    with pytest.raises(UsageError, match="unknown attestation 'gui'"):
        attest.record(repo.path, "gui", "checked")


def test_the_command_records_and_says_where(repo):
    done = run_ccvm(
        "attest", "tty", "--note", "resized; vim, less, vi-mode ok", cwd=repo.path, env=isolated_git_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    tree = gitchange.tree_hash(repo.path)
    assert f"for tree {tree[:12]}" in done.stdout
    assert attest.current(repo.path, "tty", tree).note == "resized; vim, less, vi-mode ok"


def test_the_command_without_a_note_is_a_usage_error(repo):
    done = run_ccvm("attest", "tty", cwd=repo.path, env=isolated_git_env(), timeout=120)
    assert done.returncode == 2
    assert "--note" in done.stderr and "Traceback" not in done.stderr


def test_auto_takes_no_note_and_a_launcher_without_tty_scenarios_is_one_line(repo, tmp_path):
    env = isolated_git_env()
    both = run_ccvm("attest", "tty", "--auto", "--note", "x", cwd=repo.path, env=env, timeout=120)
    assert both.returncode == 2 and both.stderr.count("\n") == 1
    assert "--auto takes no --note" in both.stderr
    matrix = tmp_path / "project" / "matrix"
    shutil.copytree(SEED_MATRIX, matrix)
    declared = (matrix / "launcher.yaml").read_text()
    (matrix / "launcher.yaml").write_text(declared[: declared.index("\n# Terminal sessions")] + "\n")
    none = run_ccvm("attest", "tty", "--auto", cwd=repo.path, env={**env, "CCVM_MATRIX": str(matrix)}, timeout=120)
    assert none.returncode == 2, none.stderr
    assert none.stderr == (
        f"ccvm: error: {matrix / 'launcher.yaml'}: declares no tty scenarios; add `tty: {{scenarios: [...]}}` "
        "(docs: terminal.md, Terminal scenarios for your launcher)\n"
    )
    assert attest.current_automated(repo.path, "tty", gitchange.tree_hash(repo.path)) is None  # nothing recorded


def test_an_automated_result_is_kept_per_tree_and_a_corrupt_one_is_absent(repo):
    tree = gitchange.tree_hash(repo.path)
    made, path = attest.record_automated(
        repo.path, "tty", passed=False, cells=("aarch64-tcg-virt",), cases=3, failed=("tty.x shell vi",)
    )
    assert path == repo.path / ".git" / "ccvm" / "attestations" / "tty.auto" / f"{tree}.json"
    assert attest.current_automated(repo.path, "tty", tree) == made
    assert made.summary().startswith("the automated check FAILED at ") and "tty.x shell vi" in made.summary()
    repo.write("src/console.py", "X = 9\n")
    assert attest.current_automated(repo.path, "tty", gitchange.tree_hash(repo.path)) is None
    path.write_text("{not json")
    assert attest.current_automated(repo.path, "tty", tree) is None
