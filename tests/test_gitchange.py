"""gitchange against real git in temporary repositories."""

from __future__ import annotations

import pytest
from gitrepo import GitRepo

from ccvm.ci import gitchange
from ccvm.errors import UsageError

pytestmark = pytest.mark.usefixtures("isolated_git")


@pytest.fixture
def repo(tmp_path) -> GitRepo:
    made = GitRepo.create(
        tmp_path / "repo",
        files={"README.md": "hello\n", ".gitignore": "reports/\n*.log\n", "src/a.py": "A = 1\n", "src/b.py": "B = 1\n"},
    )
    made.branch("feature")
    return made


def changes(repo: GitRepo, base: str = "main") -> tuple[str, ...]:
    found = gitchange.merge_base(repo.path, base)
    return gitchange.changed_paths(repo.path, found.commit)


def test_a_fresh_branch_has_no_change(repo):
    assert changes(repo) == ()


def test_committed_staged_unstaged_and_untracked_changes_all_count(repo):
    repo.write("src/a.py", "A = 2\n")
    repo.commit("committed")
    repo.write("src/b.py", "B = 2\n")
    repo.git("add", "src/b.py")  # staged
    repo.write("README.md", "changed\n")  # unstaged
    repo.write("docs/new page.md", "untracked, with a space\n")
    assert changes(repo) == ("README.md", "docs/new page.md", "src/a.py", "src/b.py")


def test_ignored_files_do_not_count(repo):
    repo.write("reports/junit/gate.xml", "<x/>")
    repo.write("src/debug.log", "noise")
    assert changes(repo) == ()


def test_deleted_and_renamed_files_count_on_both_sides(repo):
    repo.git("mv", "src/a.py", "src/renamed.py")
    (repo.path / "src/b.py").unlink()
    assert changes(repo) == ("src/a.py", "src/b.py", "src/renamed.py")


def test_an_edit_undone_is_no_change(repo):
    repo.write("src/a.py", "A = 2\n")
    repo.commit("edit")
    repo.write("src/a.py", "A = 1\n")
    assert changes(repo) == ()


def test_commits_on_main_after_the_fork_are_not_part_of_the_change(repo):
    repo.write("src/a.py", "A = 2\n")
    repo.commit("on feature")
    repo.git("checkout", "-q", "main")
    repo.write("src/b.py", "B = main moved on\n")
    repo.commit("on main")
    repo.git("checkout", "-q", "feature")
    assert changes(repo) == ("src/a.py",)


def test_origin_main_is_the_fallback(repo):
    main = repo.git("rev-parse", "main").strip()
    repo.git("update-ref", "refs/remotes/origin/main", main)
    repo.git("branch", "-q", "-D", "main")
    found = gitchange.merge_base(repo.path, "main")
    assert (found.ref, found.commit) == ("origin/main", main)


def test_neither_main_nor_origin_main_is_one_clear_line(repo):
    repo.git("branch", "-q", "-D", "main")
    with pytest.raises(UsageError) as caught:
        gitchange.merge_base(repo.path, "main")
    message = str(caught.value)
    assert "neither 'main' nor 'origin/main' exists" in message and "--base REF" in message
    assert "\n" not in message


def test_a_configured_base_is_used(repo):
    repo.git("branch", "-q", "develop", "main")
    assert gitchange.merge_base(repo.path, "develop").ref == "develop"


def test_outside_a_repository_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not inside a git work tree"):
        gitchange.repo_root(tmp_path)


def test_repo_root_from_a_subdirectory(repo):
    assert gitchange.repo_root(repo.path / "src") == repo.path.resolve()


def test_tree_hash_of_a_clean_tree_is_heads_tree(repo):
    assert gitchange.tree_hash(repo.path) == repo.git("rev-parse", "HEAD^{tree}").strip()


def test_tree_hash_sees_uncommitted_and_untracked_content_but_not_ignored(repo):
    clean = gitchange.tree_hash(repo.path)
    repo.write("reports/out.xml", "ignored")
    assert gitchange.tree_hash(repo.path) == clean
    repo.write("src/a.py", "A = 2\n")
    edited = gitchange.tree_hash(repo.path)
    assert edited != clean
    repo.write("src/new.py", "N = 1\n")
    untracked = gitchange.tree_hash(repo.path)
    assert untracked not in (clean, edited)
    (repo.path / "src/new.py").unlink()
    repo.write("src/a.py", "A = 1\n")
    assert gitchange.tree_hash(repo.path) == clean


def test_tree_hash_leaves_the_real_index_alone(repo):
    repo.write("src/a.py", "A = 2\n")
    repo.write("src/new.py", "N = 1\n")
    before = repo.git("status", "--porcelain")
    gitchange.tree_hash(repo.path)
    assert repo.git("status", "--porcelain") == before
    assert repo.git("diff", "--cached", "--name-only") == ""


def test_env_without_repo_location_drops_what_hooks_export():
    env = gitchange.env_without_repo_location(
        {"GIT_DIR": "/x/.git", "GIT_INDEX_FILE": "/x/i", "PATH": "/bin", "GIT_AUTHOR_NAME": "kept"}
    )
    assert env == {"PATH": "/bin", "GIT_AUTHOR_NAME": "kept"}


def test_tree_hash_sees_a_same_size_edit_right_after_a_commit(repo):
    # Same second, same size: a stat cache would call the file unchanged.
    repo.write("src/a.py", "A = 7\n")
    repo.commit("seven")
    committed = repo.git("rev-parse", "HEAD^{tree}").strip()
    repo.write("src/a.py", "A = 8\n")
    assert gitchange.tree_hash(repo.path) != committed


def test_tree_hash_keeps_tracked_files_an_ignore_rule_covers(repo):
    repo.write("reports/kept.txt", "tracked before the ignore rule\n")
    repo.git("add", "-f", "reports/kept.txt")
    repo.commit("force-added")
    assert gitchange.tree_hash(repo.path) == repo.git("rev-parse", "HEAD^{tree}").strip()


def test_reports_is_never_a_change_even_without_an_ignore_rule(tmp_path):
    """A project whose .gitignore says nothing of reports/ (one that just adopted ccvm): what ccvm's
    checks wrote there is neither a changed path nor part of the tree hash an attestation is tied to."""
    made = GitRepo.create(tmp_path / "bare", files={"README.md": "hello\n"})
    made.branch("feature")
    before = gitchange.tree_hash(made.path)
    made.write("reports/junit/gate-host.xml", "<x/>")
    made.write("reports/gate/lint.log", "log")
    assert changes(made) == ()
    assert gitchange.tree_hash(made.path) == before
    made.write("docs/reports/page.md", "a folder of the project's own named reports, deeper down\n")
    assert changes(made) == ("docs/reports/page.md",)


def test_ccvm_makes_reports_with_an_ignore_file_of_its_own(tmp_path):
    from ccvm.files import make_dirs, write_atomic

    made = GitRepo.create(tmp_path / "fresh", files={"README.md": "hello\n"})
    write_atomic(made.path / "reports" / "junit" / "host.xml", b"<x/>")
    assert (made.path / "reports" / ".gitignore").read_text() == "*\n"
    assert made.git("status", "--porcelain") == ""  # git itself sees nothing new
    (made.path / "reports" / ".gitignore").write_text("# the project's own\n")
    make_dirs(made.path / "reports" / "boot")  # reports/ exists: its .gitignore is left as it is
    assert (made.path / "reports" / ".gitignore").read_text() == "# the project's own\n"
    make_dirs(tmp_path / "out" / "junit")  # a folder by another name gets none
    assert not (tmp_path / "out" / ".gitignore").exists()
