"""SUMMARY.md read the way mdBook's summary parser reads it.

* Links in paragraphs before the first list and after the last one are
  prefix and suffix chapters: every link there is a chapter.
* In a list, each item is one chapter: its first link.  Whatever else the
  item holds (a second link on a continuation line, text) mdBook skips, so
  it is neither a chapter nor reported; a nested list holds sub-chapters.
* ``[Draft]()`` is a draft chapter (no file yet); ``# Title`` lines are part
  titles and ``---`` separators, neither a chapter.
"""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt

from ccvm.checks.docs.page import Link


def parse_summary(path: Path) -> tuple[Link, ...]:
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8", errors="replace"))
    entries: list[Link] = []
    taken: list[bool] = []  # per open list item: has it given its chapter yet?
    in_heading = False
    for token in tokens:
        if token.type == "list_item_open":
            taken.append(False)
        elif token.type == "list_item_close":
            taken.pop()
        elif token.type in ("heading_open", "heading_close"):
            in_heading = token.type == "heading_open"
        elif token.type == "inline" and not in_heading and not (taken and taken[-1]):
            line = token.map[0] + 1 if token.map else 1
            for child in token.children or []:
                if child.type in ("softbreak", "hardbreak"):
                    line += 1
                elif child.type == "link_open":
                    entries.append(Link(line=line, target=str(child.attrs.get("href", ""))))
                    if taken:
                        taken[-1] = True
                        break
    return tuple(entries)
