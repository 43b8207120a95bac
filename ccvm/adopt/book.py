"""The project's mdBook, for matrix/docs.yaml: where it is, and which of the
chapters its SUMMARY.md lists are made at build time.

A chapter listed with no file is taken as made by a build when a Nix file
names it (``cp ${optionsDoc} doc/src/options.md`` in a derivation): it is
recorded under ``generated`` with that file.  One no Nix file names stays a
finding of ``ccvm docs``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ccvm.checks.docs.config import find_book, read_book
from ccvm.checks.docs.summary import parse_summary
from ccvm.matrix.docs import load_docs


@dataclass(frozen=True, kw_only=True)
class BookFacts:
    directory: str = ""  # the mdBook directory, relative ("docs", "." for the root); "" when there is none
    generated: tuple[tuple[str, str], ...] = ()  # (chapter, relative to src; the Nix file that names it)


def _named_by(name: str, texts: dict[str, str]) -> str:
    pattern = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])")
    return next((path for path, text in texts.items() if pattern.search(text)), "")


def _nix_texts(root: Path, nix_files: tuple[str, ...]) -> dict[str, str]:
    texts = {}
    for relpath in nix_files:
        try:
            texts[relpath] = (root / relpath).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
    return texts


def read_book_facts(root: Path, nix_files: tuple[str, ...], *, own_docs_yaml: bool) -> BookFacts:
    """The book the project's own matrix/docs.yaml names (``own_docs_yaml``: there is one without init's
    header), else the one ``ccvm docs`` would find: a docs.yaml init wrote is written again, not read."""
    recorded = load_docs(root / "matrix").book if own_docs_yaml else ""
    found = root / recorded if recorded else find_book(root)
    if found is None:
        return BookFacts()
    book = read_book(found)
    if not book.summary.is_file():
        return BookFacts()
    texts = _nix_texts(root, nix_files)
    generated = []
    for entry in parse_summary(book.summary):
        target = entry.target.strip().partition("#")[0]
        if not target or "://" in target:
            continue
        chapter = Path(os.path.normpath(book.src / target))
        if chapter.is_file():
            continue
        made_by = _named_by(chapter.name, texts)
        if made_by:
            generated.append((Path(os.path.relpath(chapter, book.src)).as_posix(), made_by))
    directory = Path(os.path.relpath(found, root)).as_posix()
    return BookFacts(directory=directory, generated=tuple(generated))
