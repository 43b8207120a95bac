"""What an existing repository has that ccvm's matrix should know about."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccvm.adopt.book import read_book_facts
from ccvm.adopt.flake import FlakeFacts, read_flake
from ccvm.adopt.formatters import ProjectStyle, project_style
from ccvm.checks.sourcefiles import discover as discover_sources
from ccvm.errors import HostError
from ccvm.git import git
from ccvm.matrix.launcher import Launcher, load_launcher


@dataclass(frozen=True, kw_only=True)
class Findings:
    root: Path
    flake: FlakeFacts | None
    book: str  # the mdBook directory, relative ("docs"), or ""
    host_tests: tuple[str, ...]  # shell scripts under tests/
    shell: tuple[str, ...]
    nix: tuple[str, ...]
    style: ProjectStyle  # the project's own settings for each tool ccvm runs, with where each came from
    base: str  # the branch the gate compares with
    base_guessed: bool
    launcher: Launcher | None = None  # the project's own matrix/launcher.yaml, read (never written) by init
    # The book's chapters made at build time, for matrix/docs.yaml: (chapter, the Nix file that names it).
    book_generated: tuple[tuple[str, str], ...] = ()


def _branch(root: Path) -> tuple[str, bool]:
    """The repository's default branch (the gate's base, and the branch whose pushes run the workflow): the
    one origin's HEAD names where the clone knows it, else the current branch; main, guessed, when git cannot say."""
    for ref, prefix in (("refs/remotes/origin/HEAD", "origin/"), ("HEAD", "")):
        try:
            done = git(root, "symbolic-ref", "--short", "-q", ref)
        except HostError:
            return "main", True
        name = done.stdout.strip() if done.ok else ""
        if name.startswith(prefix) and name.removeprefix(prefix):
            return name.removeprefix(prefix), False
    return "main", True


def discover(root: Path) -> Findings:
    sources = discover_sources(root)
    host_tests = tuple(path for path in sources.shell if path.startswith("tests/") and path.count("/") == 1)
    base, guessed = _branch(root)
    book = read_book_facts(root, sources.nix)
    return Findings(
        root=root,
        flake=read_flake(root),
        book=book.directory,
        host_tests=host_tests,
        shell=sources.shell,
        nix=sources.nix,
        style=project_style(root, sources.nix),
        base=base,
        base_guessed=guessed,
        launcher=load_launcher(root / "matrix") if (root / "matrix").is_dir() else None,
        book_generated=book.generated,
    )
