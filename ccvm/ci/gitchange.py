"""What a change is, as git sees it: the working tree (committed or not,
untracked-but-not-ignored files included) against the merge base with the
main branch, and a hash of the working tree's content.

Every git call goes through ``ccvm.git`` (own session, one timeout).
Nothing here touches the real index, HEAD or any ref.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ccvm.errors import UsageError
from ccvm.files import REPORTS_DIR
from ccvm.git import git, git_output

# What ccvm's own checks write (JUnit files, logs) is never part of a change, whether or not the
# reports/.gitignore ccvm writes when it makes the folder is there (an older run's, or one deleted).
NOT_A_CHANGE = f":(exclude,top){REPORTS_DIR}/"

# Set by git for hooks; inherited by a check they would point its own git
# calls (say, in a test's temporary repository) at this repository.
REPO_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_PREFIX",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
)


@dataclass(frozen=True, kw_only=True)
class MergeBase:
    ref: str  # the ref that was found, e.g. main or origin/main
    commit: str  # the merge base of HEAD and ref


def env_without_repo_location(env: dict[str, str] | None = None) -> dict[str, str]:
    source = os.environ if env is None else env
    return {key: value for key, value in source.items() if key not in REPO_LOCATION_VARS}


def repo_root(cwd: Path | None = None) -> Path:
    done = git(cwd or Path.cwd(), "rev-parse", "--show-toplevel")
    if not done.ok or not done.stdout.strip():
        raise UsageError("not inside a git work tree: run this from a clone of the project")
    return Path(done.stdout.strip())


def git_dir(root: Path) -> Path:
    return Path(git_output(root, "rev-parse", "--absolute-git-dir").strip())


def git_path(root: Path, name: str) -> Path:
    """A path inside the git directory (``git rev-parse --git-path``), absolute."""
    path = Path(git_output(root, "rev-parse", "--git-path", name).strip())
    return path if path.is_absolute() else root / path


def _commit_of(root: Path, ref: str) -> str | None:
    done = git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    return done.stdout.strip() if done.ok and done.stdout.strip() else None


def base_candidates(base: str) -> tuple[str, ...]:
    """The ref itself, then the same branch on origin (main, then origin/main)."""
    return (base,) if base.startswith("origin/") else (base, f"origin/{base}")


def merge_base(root: Path, base: str) -> MergeBase:
    candidates = base_candidates(base)
    ref = next((candidate for candidate in candidates if _commit_of(root, candidate)), None)
    if ref is None:
        tried = " nor ".join(repr(c) for c in candidates)
        raise UsageError(
            f"cannot find the main branch: neither {tried} exists; pass --base REF or set base: in matrix/gate.yaml"
        )
    if _commit_of(root, "HEAD") is None:
        raise UsageError("HEAD has no commit yet; commit something first")
    done = git(root, "merge-base", "HEAD", ref)
    if not done.ok or not done.stdout.strip():
        raise UsageError(f"HEAD and {ref} share no history (a shallow clone? run git fetch --unshallow)")
    return MergeBase(ref=ref, commit=done.stdout.strip())


def _nul_list(text: str) -> list[str]:
    return [item for item in text.split("\0") if item]


def changed_paths(root: Path, base_commit: str) -> tuple[str, ...]:
    """Paths that differ between base_commit and the working tree, plus
    untracked files that are not ignored, reports/ left out; a rename counts as both paths."""
    diffed = git_output(
        root, "diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", base_commit, "--", ":/", NOT_A_CHANGE
    )
    untracked = git_output(root, "ls-files", "--others", "--exclude-standard", "-z", "--", ":/", NOT_A_CHANGE)
    return tuple(sorted(set(_nul_list(diffed)) | set(_nul_list(untracked))))


def tree_hash(root: Path) -> str:
    """The git tree of the working tree's content, uncommitted and untracked
    (not ignored) files included, reports/ as HEAD has it, built in a throwaway index.

    The throwaway index starts from HEAD's tree with no stat cache, so every
    file is read and hashed: a cached stat can hide an edit made in the same
    second as the last index write, and an attestation must match content.
    """
    with tempfile.TemporaryDirectory(prefix="ccvm-tree-") as scratch:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(scratch) / "index")}
        head = _commit_of(root, "HEAD")
        if head:
            git_output(root, "read-tree", "HEAD", env=env)  # keeps tracked files that an ignore rule covers
        git_output(root, "add", "-A", "--", ":/", env=env)
        # reports/ as HEAD has it (an exclude pathspec in `add` fails where .gitignore names the folder)
        if head:
            git_output(root, "reset", "-q", head, "--", f":/{REPORTS_DIR}", env=env)
        else:
            git_output(root, "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", f":/{REPORTS_DIR}", env=env)
        return git_output(root, "write-tree", env=env).strip()
