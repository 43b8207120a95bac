"""One tool's settings as one place in a project states them, with where.

Every reader of a project's settings (treefmt.toml, treefmt-nix, a CI
workflow or Makefile line, .editorconfig, .shellcheckrc, ruff's config)
returns ``Found`` values; ``ccvm.adopt.formatters`` picks one per tool and
writes matrix/style.yaml from it."""

from __future__ import annotations

from dataclasses import dataclass

# The tools ccvm runs, by the names matrix/style.yaml and the suites use.
TOOLS = ("shfmt", "shellcheck", "nixfmt", "ruff-check", "ruff-format")

# Words that say what a tool does rather than how it formats or checks: ccvm passes its own.
ACTION_WORDS = {
    "shfmt": frozenset({"-w", "--write", "-l", "--list", "-d", "--diff", "-f", "--find", "-l=0", "-f=0"}),
    "shellcheck": frozenset(),
    "nixfmt": frozenset({"-c", "--check", "-v", "--verify", "-q", "--quiet"}),
    "ruff-check": frozenset({"check", "--fix", "--no-fix", "--exit-non-zero-on-fix", "--diff", "--quiet", "-q"}),
    "ruff-format": frozenset({"format", "--check", "--diff", "--quiet", "-q"}),
}
# Options that take the next word as their value, per tool (so a value is never read as a file).
VALUE_OPTIONS = {
    "shfmt": frozenset({"-i", "--indent", "-ln", "--language-dialect", "--filename", "--detect"}),
    "shellcheck": frozenset(
        {"-S", "--severity", "-e", "--exclude", "-i", "--include", "-o", "--enable", "-s", "--shell", "-f"}
        | {"--format", "-P", "--source-path", "-W", "--wiki-link-count", "-C", "--color", "--rcfile"}
    ),
    "nixfmt": frozenset({"-w", "--width", "--indent", "--filename"}),
    "ruff-check": frozenset(
        {"--select", "--extend-select", "--ignore", "--extend-ignore", "--line-length", "--config", "--target-version"}
        | {"--per-file-ignores", "--extend-per-file-ignores", "--exclude", "--extend-exclude", "--output-format"}
    ),
    "ruff-format": frozenset({"--line-length", "--config", "--target-version", "--exclude", "--extend-exclude"}),
}
# Options ccvm sets itself for its report; a project's value for them is dropped.
REPORT_OPTIONS = {
    "shellcheck": frozenset({"-f", "--format", "-C", "--color", "-W", "--wiki-link-count"}),
    "ruff-check": frozenset({"--output-format"}),
}


@dataclass(frozen=True, kw_only=True)
class Found:
    """One tool's settings from one source.  ``where`` is ``file:line``; ``what`` says which setting."""

    tool: str
    where: str
    what: str
    options: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    skip: str = ""  # why ccvm must not run this tool here (the project formats with another), or ""

    @property
    def source(self) -> str:
        return f"{self.where} {self.what}".strip()


def clean_options(tool: str, words: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A tool's words less those saying what to do (-w, --check, ...) and those shaping ccvm's report."""
    kept: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        flag = word.split("=", 1)[0]
        if word in ACTION_WORDS.get(tool, ()):
            continue
        if flag in REPORT_OPTIONS.get(tool, ()):
            skip_next = "=" not in word and flag in VALUE_OPTIONS.get(tool, ())
            continue
        kept.append(word)
    return tuple(kept)


def treefmt_glob(glob: str) -> str:
    """A treefmt glob as a style.yaml glob.  treefmt's ``*`` crosses directories (``vendor/*`` is
    everything under vendor/); a glob without / is a file name at any depth in both."""
    if "/" not in glob:
        return glob
    parts = glob.removeprefix("./").split("/")
    last = parts[-1]
    head = parts[:-1]
    if last == "*":
        return "/".join([*head, "**"])
    if "*" in last and "**" not in last:
        return "/".join([*head, "**", last])
    return "/".join([*head, last])
