"""Real git repositories for tests: GitRepo and an environment free of the
caller's repository and git configuration."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ccvm.ci import gitchange


def isolated_git_env() -> dict[str, str]:
    """This environment without the caller's repository or git configuration."""
    env = gitchange.env_without_repo_location()
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    return env


class GitRepo:
    """A throwaway repository on branch main with one commit, driven by real git."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path, *, files: dict[str, str] | None = None, branch: str = "main") -> GitRepo:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.git("init", "-q", "-b", branch)
        repo.git("config", "user.name", "Ada Tester")
        repo.git("config", "user.email", "ada@example.test")
        repo.git("config", "commit.gpgsign", "false")
        for name, text in (files or {"README.md": "hello\n", ".gitignore": "reports/\n*.log\n"}).items():
            repo.write(name, text)
        repo.commit("initial")
        return repo

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=isolated_git_env(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
        return done.stdout

    def write(self, name: str, text: str) -> Path:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def branch(self, name: str) -> None:
        self.git("checkout", "-q", "-b", name)
