"""mdBook's ``{{#include}}`` directives, spliced in before the page is read,
as mdBook's links preprocessor does it (mdBook reads the page after that).

    {{#include file.md}}          the whole file
    {{#include file.rs:2}}        line 2 only
    {{#include file.rs:2:10}}     lines 2 to 10 (``:2:`` from 2 on, ``::10`` up to 10)
    {{#include file.rs:name}}     between ``ANCHOR: name`` and ``ANCHOR_END: name``
    \\{{#include file.md}}        escaped: written out as text, without the backslash

Paths are relative to the file the directive is in; included files may
include others, up to mdBook's depth of 10.  ``{{#rustdoc_include}}``
reads files the same way; ``{{#title}}`` is dropped.  A link in included
text is resolved from the chapter it ends up in (mdBook does not rewrite
it), but it is reported at the file and line it is written on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MAX_DEPTH = 10  # mdBook's MAX_LINK_NESTED_DEPTH
_DIRECTIVE = re.compile(r"\\\{\{#.*\}\}|\{\{\s*#([A-Za-z0-9_]+)\s+([^}]+)\}\}")
_ANCHOR = re.compile(r"ANCHOR:\s*([\w_-]+)")
_ANCHOR_END = re.compile(r"ANCHOR_END:\s*([\w_-]+)")
INCLUDING = frozenset({"include", "rustdoc_include"})


@dataclass(frozen=True, kw_only=True)
class IncludeProblem:
    file: Path
    line: int
    message: str


@dataclass(frozen=True, kw_only=True)
class Expanded:
    text: str
    origins: tuple[tuple[Path, int], ...]  # per line of text: the file and line it came from
    included: frozenset[Path]
    problems: tuple[IncludeProblem, ...]

    def origin(self, line: int) -> tuple[Path, int]:
        return self.origins[min(max(line, 1), len(self.origins)) - 1] if self.origins else (Path(), line)


def _lines(text: str, start: int, end: int | None) -> str:
    return "\n".join(text.splitlines()[start:end])


def _anchored(text: str, name: str) -> str | None:
    kept: list[str] = []
    inside = found = False
    for line in text.splitlines():
        end = _ANCHOR_END.search(line)
        if inside and end and end.group(1) == name:
            break
        start = _ANCHOR.search(line)
        if not inside and start and start.group(1) == name and not end:
            inside = found = True
            continue
        if inside and not start and not end:
            kept.append(line)
    return "\n".join(kept) if found else None


def select(text: str, spec: str) -> tuple[str, int, str]:
    """The part of a file that ``path:spec`` names, the line it starts on, and a problem ('' when fine)."""
    if not spec:
        return text, 1, ""
    parts = spec.split(":", 2)
    if not all(part.isdigit() or part == "" for part in parts):
        part = _anchored(text, spec)
        return (part, 1, "") if part is not None else ("", 1, f"no 'ANCHOR: {spec}' in it")
    first = max(int(parts[0]) - 1, 0) if parts[0] else 0
    if len(parts) == 1:
        return _lines(text, first, first + 1), first + 1, ""
    last = int(parts[1]) if parts[1] else None
    return _lines(text, first, last), first + 1, ""


@dataclass
class _Splicer:
    pieces: list[tuple[str, Path, int]]
    included: set[Path]
    problems: list[IncludeProblem]

    def splice(self, path: Path, text: str, first_line: int, depth: int) -> None:
        pos = 0
        for match in _DIRECTIVE.finditer(text):
            line = first_line + text.count("\n", 0, match.start())
            self.pieces.append((text[pos : match.start()], path, first_line + text.count("\n", 0, pos)))
            pos = match.end()
            if match.group(0).startswith("\\"):
                self.pieces.append((match.group(0)[1:], path, line))
            elif match.group(1) in INCLUDING and depth < MAX_DEPTH:
                self._include(path, line, match.group(2).split()[0] if match.group(2).split() else "", depth)
            elif match.group(1) != "title":
                self.pieces.append((match.group(0), path, line))
        self.pieces.append((text[pos:], path, first_line + text.count("\n", 0, pos)))

    def _include(self, path: Path, line: int, argument: str, depth: int) -> None:
        name, _, spec = argument.partition(":")
        target = Path(os.path.normpath(path.parent / name))
        try:
            content = target.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            self.problems.append(IncludeProblem(file=path, line=line, message=f"cannot include {name}: {exc.strerror}"))
            return
        self.included.add(target)
        part, start, problem = select(content, spec)
        if problem:
            message = f"{{{{#include {argument}}}}}: {problem}"
            self.problems.append(IncludeProblem(file=path, line=line, message=message))
        self.splice(target, part, start, depth + 1)


def _origins(pieces: list[tuple[str, Path, int]]) -> tuple[tuple[Path, int], ...]:
    origins: list[tuple[Path, int]] = []
    at_line_start = True
    for text, path, line in pieces:
        for offset, segment in enumerate(text.splitlines(keepends=True)):
            if at_line_start:
                origins.append((path, line + offset))
            at_line_start = segment.endswith(("\n", "\r"))
    return tuple(origins)


def expand(path: Path, text: str) -> Expanded:
    splicer = _Splicer(pieces=[], included=set(), problems=[])
    splicer.splice(path, text, 1, 0)
    return Expanded(
        text="".join(piece for piece, _, _ in splicer.pieces),
        origins=_origins(splicer.pieces),
        included=frozenset(splicer.included),
        problems=tuple(splicer.problems),
    )
