"""Which documentation ``ccvm docs`` checks, read from matrix/docs.yaml
(written by ``ccvm init`` when it finds an mdBook; optional: without it
``ccvm docs`` looks for a book itself).

    book: doc                 # the mdBook directory (holding book.toml), relative to the project root
    generated:                # chapters made at build time (listed in SUMMARY.md, written by e.g. a
      - microvm-options.md    # Nix derivation), relative to the book's src: never reported missing

Paths are relative and stay inside the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ccvm.matrix.yamlsrc import Mapping, expect_mapping, load_yaml
from ccvm.matrix.yamlvalues import text, words

DOCS_FILE = "docs.yaml"


@dataclass(frozen=True, kw_only=True)
class DocsSettings:
    book: str = ""  # relative to the project root; "" = not recorded
    generated: tuple[str, ...] = ()  # relative to the book's src, POSIX form
    path: Path | None = None  # the file that records them, for messages: None without one
    book_line: int | None = None

    def where(self, root: Path) -> str:
        """The book's line in docs.yaml, relative to root when it is inside it: "matrix/docs.yaml:2"."""
        if self.path is None:
            return DOCS_FILE
        shown = self.path.relative_to(root) if self.path.is_relative_to(root) else self.path
        return f"{shown.as_posix()}:{self.book_line}" if self.book_line else shown.as_posix()


def _relative(doc: Mapping, key: str, value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise doc.error(key, f"{key} {value!r} must be a path relative to the project, without '..'")
    return path.as_posix()


def parse_docs(doc: Mapping) -> DocsSettings:
    doc.reject_unknown_keys(["book", "generated"], DOCS_FILE)
    book = _relative(doc, "book", text(doc, "book")) if "book" in doc else ""
    generated = (
        tuple(_relative(doc, "generated", name) for name in words(doc, "generated")) if "generated" in doc else ()
    )
    return DocsSettings(book=book, generated=generated, path=doc.path, book_line=doc.line_of("book") if book else None)


def load_docs(matrix_root: Path) -> DocsSettings:
    """matrix/docs.yaml alone (ccvm docs needs no other matrix file); defaults when it is absent."""
    path = matrix_root / DOCS_FILE
    if not path.is_file():
        return DocsSettings()
    return parse_docs(expect_mapping(load_yaml(path), path, 1, DOCS_FILE))
