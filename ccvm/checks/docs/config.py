"""book.toml: where the sources are, and the ``[output.linkcheck2]`` settings
that ccvm's checker honours as mdbook-linkcheck2 would (``[output.linkcheck]``,
the older backend's table, is read when there is no linkcheck2 table)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.errors import ConfigError, UsageError
from ccvm.matrix.docs import DocsSettings

_TOML_LINE = re.compile(r"at line (\d+)")
POLICIES = ("error", "warn", "ignore")
LINKCHECK_TABLES = ("linkcheck2", "linkcheck")
BOOK_DIRS = ("docs", "doc", "book", ".")  # where a book is looked for, in this order


@dataclass(frozen=True, kw_only=True)
class LinkcheckSettings:
    """What mdbook-linkcheck2 reads from its table, as far as a local check goes.

    warning_policy: what an incomplete (undefined reference) link or an
    absolute link is: an error, a warning, or nothing (linkcheck2's default
    is warn).  exclude: regexes; a link any of them finds is not checked.
    latex_support: math ($...$, $$...$$, \\(...\\), \\[...\\]) is not scanned
    for links.  traverse_parent_directories: links may reach files outside
    src/ (they must still exist)."""

    table: str = ""  # "output.linkcheck2", or "" when the book has none
    warning_policy: str = "warn"
    exclude: tuple[re.Pattern[str], ...] = ()
    latex_support: bool = False
    traverse_parent_directories: bool = False


@dataclass(frozen=True, kw_only=True)
class Book:
    root: Path  # the directory holding book.toml
    src: Path
    toml: dict = field(default_factory=dict)  # book.toml as read; {} without one
    linkcheck: LinkcheckSettings = field(default_factory=LinkcheckSettings)

    @property
    def summary(self) -> Path:
        return self.src / "SUMMARY.md"

    @property
    def toml_path(self) -> Path:
        return self.root / "book.toml"

    @property
    def page_404(self) -> Path:
        html = self.toml.get("output", {}).get("html", {})
        name = html.get("input-404", "404.md") if isinstance(html, dict) else "404.md"
        return self.src / str(name)


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        raise ConfigError(path, int(found.group(1)) if found else None, f"not valid TOML: {exc}") from None


def _linkcheck(path: Path, data: dict) -> LinkcheckSettings:
    outputs = data.get("output", {})
    name = next((n for n in LINKCHECK_TABLES if isinstance(outputs.get(n), dict)), "")
    if not name:
        return LinkcheckSettings()
    table = outputs[name]
    where = f"[output.{name}]"
    policy = table.get("warning-policy", "warn")
    if policy not in POLICIES:
        raise ConfigError(path, None, f"{where} warning-policy = {policy!r}: choose one of {', '.join(POLICIES)}")
    patterns = table.get("exclude", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError(path, None, f"{where} exclude must be a list of regular expressions (strings)")
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ConfigError(path, None, f"{where} exclude {pattern!r} is not a regular expression: {exc}") from None
    return LinkcheckSettings(
        table=f"output.{name}",
        warning_policy=policy,
        exclude=tuple(compiled),
        latex_support=bool(table.get("latex-support", False)),
        traverse_parent_directories=bool(table.get("traverse-parent-directories", False)),
    )


def read_book(book_dir: Path) -> Book:
    """The book's layout from book.toml ([book] src, default src/) and its link checker settings."""
    data = _read_toml(book_dir / "book.toml") if (book_dir / "book.toml").is_file() else {}
    src_name = str(data.get("book", {}).get("src", "src"))
    return Book(root=book_dir, src=book_dir / src_name, toml=data, linkcheck=_linkcheck(book_dir / "book.toml", data))


def load_book(book_dir: Path) -> Book:
    """The book at ``book_dir``, named on the command line: UsageError when there is none."""
    book = read_book(book_dir)
    if not book.summary.is_file():
        raise UsageError(f"{book_dir}: no mdBook here ({book.summary} is missing); pass --book DIR")
    return book


def find_book(root: Path) -> Path | None:
    """Where a project keeps its mdBook, when nobody said: the first of docs/, doc/, book/ and the root
    that holds a book.toml whose src has a SUMMARY.md, else the first of docs/, doc/, book/ whose
    src/SUMMARY.md makes a book without book.toml (mdBook's defaults)."""
    for name in BOOK_DIRS:
        if (root / name / "book.toml").is_file() and read_book(root / name).summary.is_file():
            return root / name if name != "." else root
    return next((root / name for name in BOOK_DIRS[:-1] if (root / name / "src" / "SUMMARY.md").is_file()), None)


def resolve_book(root: Path, *, given: Path | None, settings: DocsSettings) -> tuple[Book | None, str]:
    """The book ``ccvm docs`` checks, decided once, and how: ``--book`` (given), else the one
    matrix/docs.yaml records, else the one found (``find_book``); None when the project has none."""
    if given is not None:
        return load_book(given), "--book"
    if settings.book:
        book = read_book(root / settings.book)
        where = settings.where(root)
        if not book.summary.is_file():
            message = f"book {settings.book!r}: no mdBook there ({book.summary} is missing); fix book: or remove it"
            raise ConfigError(where, None, message)
        return book, f"recorded in {where}"
    found = find_book(root)
    return (read_book(found), "found") if found is not None else (None, "")
