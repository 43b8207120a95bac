"""What an existing repository has that ccvm's matrix should know about."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccvm.adopt.book import read_book_facts
from ccvm.adopt.flake import FlakeFacts, read_flake
from ccvm.adopt.formatters import ProjectStyle, project_style
from ccvm.adopt.scripts import FoundLauncher, Kind, Script, candidate_scripts, classify, find_launcher
from ccvm.checks.sourcefiles import discover as discover_sources
from ccvm.errors import HostError
from ccvm.git import git
from ccvm.matrix.launcher import Launcher, load_launcher

# The first line of every file `ccvm init` writes into matrix/ (ccvm.adopt.render.HEADER): a file that
# carries it is init's, written again by `ccvm init --force`; one without it is the project's own.
INIT_MARK = "# Written by `ccvm init`"


def written_by_init(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return handle.readline().startswith(INIT_MARK)
    except OSError:
        return False


@dataclass(frozen=True, kw_only=True)
class Findings:
    root: Path
    flake: FlakeFacts | None
    book: str  # the mdBook directory, relative ("docs"), or ""
    host_tests: tuple[str, ...]  # the host test scripts under tests/ (run by ccvm host)
    shell: tuple[str, ...]
    nix: tuple[str, ...]
    style: ProjectStyle  # the project's own settings for each tool ccvm runs, with where each came from
    base: str  # the branch the gate compares with
    base_guessed: bool
    launcher: Launcher | None = None  # the project's own matrix/launcher.yaml, read (never written) by init
    # The book's chapters made at build time, for matrix/docs.yaml: (chapter, the Nix file that names it).
    book_generated: tuple[tuple[str, str], ...] = ()
    found: FoundLauncher | None = None  # with none declared: the file that reads a dry-run variable
    scripts: tuple[Script, ...] = ()  # every script under tests/, with its kind


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


def _declared(root: Path) -> Launcher | None:
    """The project's own matrix/launcher.yaml (one init wrote is found again, not read)."""
    path = root / "matrix" / "launcher.yaml"
    if not path.is_file() or written_by_init(path):
        return None
    return load_launcher(root / "matrix")


def discover(root: Path) -> Findings:
    sources = discover_sources(root)
    base, guessed = _branch(root)
    flake = read_flake(root)
    docs_yaml = root / "matrix" / "docs.yaml"
    book = read_book_facts(root, sources.nix, own_docs_yaml=docs_yaml.is_file() and not written_by_init(docs_yaml))
    declared = _declared(root)
    found = None
    if declared is None:
        found = find_launcher(root, shell=sources.shell, nix=sources.nix, python=sources.python, flake=flake)
    variable = declared.dry_run.variable if declared else found.variable if found else "CCVM_DRYRUN"
    scripts = classify(root, candidate_scripts(sources.shell), nix=sources.nix, launcher=found, variable=variable)
    return Findings(
        root=root,
        flake=flake,
        book=book.directory,
        host_tests=tuple(script.path for script in scripts if script.kind is Kind.HOST),
        shell=sources.shell,
        nix=sources.nix,
        style=project_style(root, sources.nix),
        base=base,
        base_guessed=guessed,
        launcher=declared,
        found=found,
        scripts=scripts,
        book_generated=book.generated,
    )
