"""The one way ccvm runs git: ``processes.run`` (own session, hard timeout)
with git's pager off, one timeout, and one error for git missing or hanging.

The gate's change detection, the source file listing, ``ccvm init``'s base
branch and ``ccvm rehearse``'s fresh clone all call ``git``; a caller that
can do without git (listing files by walking the tree instead) catches
``HostError``.
"""

from __future__ import annotations

from pathlib import Path

from ccvm import processes
from ccvm.errors import HostError

GIT_TIMEOUT_S = 300.0  # the longest git call: a clone of a large repository


def git(root: Path, *args: str, env: dict[str, str] | None = None) -> processes.Completed:
    """Run git in root; HostError when git is missing or hangs."""
    try:
        done = processes.run(["git", "--no-pager", *args], timeout_s=GIT_TIMEOUT_S, cwd=str(root), env=env)
    except FileNotFoundError:
        raise HostError("git not found on PATH; install git") from None
    if done.returncode is None:
        raise HostError(f"git {' '.join(args)} did not finish within {GIT_TIMEOUT_S:g}s")
    return done


def git_output(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """git's stdout; HostError naming the command and git's last line when it fails."""
    done = git(root, *args, env=env)
    if not done.ok:
        detail = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        raise HostError(f"git {' '.join(args)} in {root} failed: {detail}")
    return done.stdout
