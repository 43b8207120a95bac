"""One markdown page as mdBook builds it: its links, its ids, and the
reference links that lead nowhere.

The page is read after its ``{{#include}}`` directives are spliced in
(``include.py``).  Markdown is parsed with markdown-it-py, so links in code
spans and code blocks are not links.  Beyond CommonMark, as mdBook reads it:

* footnote definitions (``[^1]: text``) are footnotes, not link reference
  definitions, and ``[^1]`` is not an incomplete link;
* ``[text]``, ``[text][]`` and ``[text][ref]`` with no definition of the
  reference are incomplete links (pulldown-cmark's broken-link callback,
  which mdbook-linkcheck2 reports); an escaped ``\\[text]`` is not;
* with ``latex_support``, math is blanked out first, as mdbook-linkcheck2
  does, so ``$[a](b)$`` is not a link.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ccvm.checks.docs.ids import Ids, normalize_id
from ccvm.checks.docs.include import Expanded, expand

# pulldown-cmark heading attributes, as mdBook enables them: "## Title {#id .class}"
_HEADING_ATTRS = re.compile(r"\s*\{([^{}]*)\}\s*$")
_FOOTNOTE_DEFINITION = re.compile(r"^( {0,3})\[\^([^\]\s]+)\]:", re.MULTILINE)
_REFERENCE = re.compile(r"\[([^\[\]\x00]*)\](?:\[([^\[\]\x00]*)\])?")
_ESCAPED = "\x00"
# mdbook-linkcheck2's latex filter, in its order; blanked (same length, newlines kept) so lines stay put.
_LATEX = (
    re.compile(r"\$\$[^$]*\$\$"),
    re.compile(r"\$[^$\n\r]*\$"),
    re.compile(r"\\\([^\n\r]*\\\)"),
    re.compile(r"\\\[(?:.|\r\n|\r|\n)*\\\]"),
)
_TASK_MARKERS = frozenset({" ", "x", "X"})


@dataclass(frozen=True, kw_only=True)
class Link:
    line: int  # in the file it is written in
    target: str
    image: bool = False
    file: Path | None = None  # where it is written, when not the page itself (an included file)


@dataclass(frozen=True, kw_only=True)
class Page:
    path: Path
    links: tuple[Link, ...]
    anchors: frozenset[str]
    incomplete: tuple[Link, ...] = ()  # target: the reference as written, e.g. "[text][ref]"
    expanded: Expanded | None = None


class _HtmlRefs(HTMLParser):
    """href/src and id attributes in raw HTML written in a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[int, str, bool]] = []  # (line within the HTML, target, is image)
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        line = self.getpos()[0]
        if tag == "a" and "href" in values:
            self.refs.append((line, values["href"], False))
        if tag == "img" and "src" in values:
            self.refs.append((line, values["src"], True))
        if "id" in values:
            self.ids.append(values["id"])
        if tag == "a" and "name" in values:
            self.ids.append(values["name"])


def _parser() -> MarkdownIt:
    # text_join off: an escaped character stays its own token, so "\[x]" is not taken for a reference.
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).disable("text_join")


def _html_refs(html: str, first_line: int) -> tuple[list[Link], list[str]]:
    refs = _HtmlRefs()
    refs.feed(html)
    refs.close()
    links = [Link(line=first_line + line - 1, target=target, image=image) for line, target, image in refs.refs]
    return links, refs.ids


def _heading_text(inline: Token) -> str:
    """What a heading shows as text: code spans and link texts included, markup and HTML tags not."""
    parts = []
    for child in inline.children or []:
        if child.type in ("text", "text_special", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts).strip()


def heading_id(inline: Token, ids: Ids) -> str:
    text = _heading_text(inline)
    attrs = _HEADING_ATTRS.search(text)
    if attrs:
        explicit = next((word[1:] for word in attrs.group(1).split() if word.startswith("#")), "")
        if explicit:
            return ids.explicit(explicit)
        text = text[: attrs.start()]
    return ids.unique(normalize_id(text.strip()))


def _references(text: str, line: int) -> Iterator[Link]:
    """Bracketed text markdown-it left as text: a reference nothing defines."""
    for match in _REFERENCE.finditer(text):
        label = match.group(2) or match.group(1)
        if not label.strip() or label.startswith("^") or match.group(1) in _TASK_MARKERS and match.group(2) is None:
            continue
        yield Link(line=line + text.count("\n", 0, match.start()), target=match.group(0))


def _inline_items(inline: Token, first_line: int) -> Iterator[tuple[Link | None, list[str], bool]]:
    """(link, html ids, is-incomplete) for each link, raw-HTML id and unresolved reference in an inline token."""
    line = first_line
    run: list[str] = []
    run_line = line

    def flush() -> Iterator[tuple[Link | None, list[str], bool]]:
        yield from ((ref, [], True) for ref in _references("".join(run), run_line))
        run.clear()

    for child in inline.children or []:
        if child.type in ("text", "text_special"):
            if not run:
                run_line = line
            run.append(_ESCAPED if child.info == "escape" else child.content)
            continue
        yield from flush()
        if child.type in ("softbreak", "hardbreak"):
            line += 1
        elif child.type == "link_open":
            yield Link(line=line, target=str(child.attrs.get("href", ""))), [], False
        elif child.type == "image":
            yield Link(line=line, target=str(child.attrs.get("src", "")), image=True), [], False
        elif child.type == "html_inline":
            links, ids = _html_refs(child.content, line)
            yield from ((link, [], False) for link in links)
            yield None, ids, False
    yield from flush()


def prepare(text: str, *, latex: bool) -> str:
    """The text markdown-it reads: footnote definitions made plain text, math blanked when asked."""
    text = _FOOTNOTE_DEFINITION.sub(lambda m: f"{m.group(1)}\\[^{m.group(2)}]:", text)
    if latex:
        for pattern in _LATEX:
            text = pattern.sub(lambda m: re.sub(r"[^\r\n]", " ", m.group(0)), text)
    return text


def _placed(link: Link, expanded: Expanded, page: Path) -> Link:
    file, line = expanded.origin(link.line)
    return Link(line=line, target=link.target, image=link.image, file=None if file == page else file)


def parse_page(path: Path, *, latex: bool = False) -> Page:
    expanded = expand(path, path.read_text(encoding="utf-8", errors="replace"))
    tokens = _parser().parse(prepare(expanded.text, latex=latex))
    links: list[Link] = []
    incomplete: list[Link] = []
    anchors: list[str] = []
    ids = Ids()
    line = 1
    for index, token in enumerate(tokens):
        if token.map:
            line = token.map[0] + 1
        if token.type == "heading_open" and index + 1 < len(tokens):
            anchors.append(heading_id(tokens[index + 1], ids))
        if token.type == "inline":
            for link, html_ids, is_incomplete in _inline_items(token, line):
                if link:
                    (incomplete if is_incomplete else links).append(_placed(link, expanded, path))
                anchors.extend(html_ids)
        elif token.type == "html_block":
            block_links, html_ids = _html_refs(token.content, line)
            links.extend(_placed(link, expanded, path) for link in block_links)
            anchors.extend(html_ids)
    return Page(
        path=path,
        links=tuple(links),
        anchors=frozenset(anchors),
        incomplete=tuple(incomplete),
        expanded=expanded,
    )
