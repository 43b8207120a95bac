"""Documentation links: the project's book and its README; without a book,
its Markdown files (``check_markdown``).

The book is checked the way mdBook and mdbook-linkcheck2 would see it, under
the book's own ``[output.linkcheck2]`` settings (``ccvm.checks.docs``):

* every SUMMARY.md chapter names a file that exists, and every page under
  src/ is built: listed, included into a listed page with ``{{#include}}``,
  or the 404 page (mdBook builds only those);
* every relative link and image in a listed page points at a file that
  exists inside src/ (mdBook copies nothing from outside it, unless
  ``traverse-parent-directories`` allows it), and a link to a page points at
  a page mdBook builds;
* absolute links (``/chapter.md``) and incomplete links (``[text]`` or
  ``[text][ref]`` with no definition) are errors under
  ``warning-policy = "error"``, warnings under "warn" (linkcheck2's
  default), nothing under "ignore"; links an ``exclude`` regex finds are
  skipped; ``latex-support`` keeps math from being read as links.

Beyond linkcheck2, every ``#anchor``, on the same page or another, must be
the id of a heading there (made the way mdBook makes them, includes and
duplicate suffixes counted) or an HTML ``id`` written in the page.

When book.toml exists the book is also built with the real mdBook
(``ccvm.checks.docs.mdbook``), so a book mdBook cannot build fails.
Chapters made at build time (matrix/docs.yaml ``generated``) are not
reported missing, and links to them pass.

Links with a scheme (https:, mailto:...) are listed as skipped cases: they
are never followed.  README.md's relative links are checked against the
repository tree (a link to a directory is fine there).  Each link is one
case named ``file:line -> target``.
"""

from __future__ import annotations

import difflib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from ccvm.checks.docs.config import BOOK_DIRS, Book, LinkcheckSettings, load_book, resolve_book
from ccvm.checks.docs.ids import normalize_id
from ccvm.checks.docs.mdbook import WARNING, build_suite, build_with_mdbook
from ccvm.checks.docs.page import Link, Page, parse_page
from ccvm.checks.docs.summary import parse_summary
from ccvm.checks.sourcefiles import candidate_files
from ccvm.errors import UsageError
from ccvm.matrix.docs import DocsSettings
from ccvm.report.progress import Progress
from ccvm.report.results import Case, Outcome, Suite
from ccvm.require import Requirements

__all__ = ["build_with_mdbook", "load_book", "normalize_id", "parse_page", "run_docs", "external_links", "warnings"]

CHECKERS = ("auto", "builtin")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
MARKDOWN_SUFFIXES = (".md", ".markdown")


@dataclass(kw_only=True)
class Site:
    """What links may point at: the repository, and (for book pages) the book."""

    root: Path
    book: Book | None = None  # None for README checks
    chapters: frozenset[Path] = frozenset()
    generated: frozenset[Path] = frozenset()  # chapters made at build time, absent here (matrix/docs.yaml)
    _pages: dict[Path, Page] = field(default_factory=dict)

    @property
    def src(self) -> Path | None:
        return self.book.src if self.book else None

    @property
    def settings(self) -> LinkcheckSettings:
        return self.book.linkcheck if self.book else LinkcheckSettings(warning_policy="ignore")

    def page(self, path: Path) -> Page:
        if path not in self._pages:
            self._pages[path] = parse_page(path, latex=self.settings.latex_support)
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
    """mdBook writes page.md as page.html and README.md as index.html: a link may name either."""
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
    outside = site.src is not None and not _inside(target, site.src)
    if outside and not site.settings.traverse_parent_directories:
        return (
            f"{shown} is outside the book's {site.rel(site.src)}/: mdBook does not copy it, so the built book "
            "has no such page; link to it in the repository by URL instead "
            "(or set traverse-parent-directories = true under [output.linkcheck2])"
        )
    if target in site.generated:
        return ""  # made at build time: nothing here to check against
    if not target.exists():
        return f"no such {'image' if image else 'file'}: {shown}"
    if outside:
        return ""
    if site.src and target.is_dir() and not any((target / n).is_file() for n in ("index.md", "README.md")):
        return f"{shown} is a directory with no index.md or README.md: mdBook builds no page for it"
    if site.src and target.suffix == ".md" and target not in site.chapters:
        return f"{shown} is not listed in {site.rel(site.src)}/SUMMARY.md, so mdBook does not build it"
    return ""


def _leaves_repository(site: Site, source: Path, target: str) -> bool:
    """A relative link in a repository page that climbs above the repository (``../../issues``): on a
    forge it names a page of the forge, not a file."""
    path_part = target.partition("#")[0].partition("?")[0]
    return (
        bool(path_part) and not path_part.startswith("/") and not _inside(_resolve(site, source, path_part), site.root)
    )


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


def _by_policy(site: Site, name: str, where: str, problem: str) -> Case:
    """A finding linkcheck2 grades by its warning-policy: error fails, warn warns, ignore passes."""
    policy = site.settings.warning_policy
    table = site.settings.table or "output.linkcheck2"
    if policy == "error":
        return Case(name=name, outcome=Outcome.FAIL, message=f"{where}: {problem} ([{table}] warning-policy = error)")
    message = f"{WARNING}{where}: {problem}" if policy == "warn" else ""
    return Case(name=name, outcome=Outcome.PASS, message=message)


def _link_problem(site: Site, source: Path, target: str, image: bool) -> str:
    path_part, _, fragment = target.partition("#")
    path_part = path_part.partition("?")[0]
    resolved = _book_page_for(_resolve(site, source, path_part)) if path_part else source
    problem = _file_problem(site, resolved, image) if path_part else ""
    if not problem and fragment:
        problem = _anchor_problem(site, resolved, fragment)
    return problem


def check_link(site: Site, source: Path, link: Link) -> Case:
    target = link.target.strip()
    shown = unquote(target)  # the parser percent-encodes what it found: show it as written
    where = f"{site.rel(link.file or source)}:{link.line}"
    name = f"{where} -> {shown or '(empty)'}"
    if site.book and any(pattern.search(target) or pattern.search(shown) for pattern in site.settings.exclude):
        return Case(name=name, outcome=Outcome.SKIP, message=f"excluded by [{site.settings.table}] exclude")
    if is_external(target):
        return Case(name=name, outcome=Outcome.SKIP, message="external link: listed, not followed")
    if not target:
        return Case(name=name, outcome=Outcome.FAIL, message=f"{where}: empty link target")
    if site.book is None and _leaves_repository(site, source, target):
        return Case(
            name=name, outcome=Outcome.SKIP, message="outside the repository (a link on its forge): not followed"
        )
    problem = _link_problem(site, source, target, link.image)
    if problem:
        what = "dead image" if link.image else "dead link"
        return Case(name=name, outcome=Outcome.FAIL, message=f"{where}: {what} {shown}: {problem}")
    if site.book and target.startswith("/"):
        return _by_policy(
            site, name, where, f"absolute link {shown}: write it relative to the page (it breaks off the site root)"
        )
    return Case(name=name, outcome=Outcome.PASS)


def _incomplete_case(site: Site, source: Path, link: Link) -> Case:
    where = f"{site.rel(link.file or source)}:{link.line}"
    problem = f"incomplete link {link.target}: no link reference definition for it"
    return _by_policy(site, f"{where} -> {link.target}", where, problem)


def _page_suite(site: Site, source: Path) -> Suite:
    start = time.monotonic()
    page = site.page(source)
    cases = [check_link(site, source, link) for link in page.links]
    if site.book:
        cases.extend(_incomplete_case(site, source, link) for link in page.incomplete)
        for problem in page.expanded.problems if page.expanded else ():
            where = f"{site.rel(problem.file)}:{problem.line}"
            cases.append(
                Case(name=f"{where} -> {{{{#include}}}}", outcome=Outcome.FAIL, message=f"{where}: {problem.message}")
            )
    return Suite(
        name=f"docs.{site.rel(source)}",
        cases=cases,
        properties={"checker": "builtin"},
        seconds=time.monotonic() - start,
    )


# --- the book ------------------------------------------------------------------


def _chapter_path(book: Book, entry: Link) -> Path:
    return Path(os.path.normpath(book.src / unquote(entry.target.strip().partition("#")[0])))


def _summary_cases(site: Site, book: Book, entries: tuple[Link, ...]) -> list[Case]:
    cases = []
    summary = site.rel(book.summary)
    for entry in entries:
        target = entry.target.strip()
        name = f"{summary}:{entry.line} -> {unquote(target) or '(draft)'}"
        chapter = _chapter_path(book, entry) if target else None
        if not target:
            cases.append(Case(name=name, outcome=Outcome.SKIP, message="draft chapter: no page yet"))
        elif chapter in site.generated:
            message = "made at build time (matrix/docs.yaml generated): not here to check"
            cases.append(Case(name=name, outcome=Outcome.SKIP, message=message))
        elif is_external(target) or chapter is None or not chapter.is_file():
            missing = site.rel(_chapter_path(book, entry))
            message = (
                f"{summary}:{entry.line}: chapter {unquote(target)} has no file {missing} "
                "(if a build makes it, list it under generated in matrix/docs.yaml)"
            )
            cases.append(Case(name=name, outcome=Outcome.FAIL, message=message))
        else:
            cases.append(Case(name=name, outcome=Outcome.PASS))
    return cases


def _orphan_cases(site: Site, book: Book) -> list[Case]:
    built = set(site.chapters) | {book.summary, book.page_404}
    for chapter in site.chapters:
        expanded = site.page(chapter).expanded
        built |= expanded.included if expanded else set()
    summary = site.rel(book.summary)
    return [
        Case(
            name=site.rel(orphan),
            outcome=Outcome.FAIL,
            message=f"{site.rel(orphan)} is not listed in {summary} nor included by a page: mdBook does not build it",
        )
        for orphan in sorted(p for p in book.src.rglob("*.md") if p not in built)
    ]


def generated_chapters(book: Book, generated: tuple[str, ...]) -> frozenset[Path]:
    """The declared build-time chapters that are not here (one a build made earlier is checked as any page)."""
    paths = (Path(os.path.normpath(book.src / name)) for name in generated)
    return frozenset(path for path in paths if not path.is_file())


def check_book(root: Path, book: Book, generated: tuple[str, ...] = ()) -> list[Suite]:
    """The builtin checker over a book: SUMMARY first, then each listed page."""
    entries = parse_summary(book.summary)
    chapters = [_chapter_path(book, e) for e in entries if e.target.strip() and not is_external(e.target.strip())]
    existing = [p for p in dict.fromkeys(chapters) if p.is_file()]
    site = Site(root=root, book=book, chapters=frozenset(existing), generated=generated_chapters(book, generated))
    summary = Suite(
        name=f"docs.{site.rel(book.summary)}",
        cases=_summary_cases(site, book, entries) + _orphan_cases(site, book),
        properties={"checker": "builtin"},
    )
    return [summary, *(_page_suite(site, page) for page in existing)]


def check_readme(root: Path, readme: Path) -> Suite:
    return _page_suite(Site(root=root), readme)


def markdown_files(root: Path) -> list[str]:
    """The project's Markdown files: tracked, or untracked and not ignored (the tree, outside git)."""
    names, _ = candidate_files(root)
    return [name for name in names if name.lower().endswith(MARKDOWN_SUFFIXES)]


def check_markdown(root: Path, names: list[str]) -> list[Suite]:
    """A project without a book: the links of each Markdown file, against the repository tree."""
    if not names:
        looked = ", ".join(f"{name}/" if name != "." else "the root" for name in BOOK_DIRS)
        skip = Case(
            name="docs",
            outcome=Outcome.SKIP,
            message=f"nothing to check: no mdBook ({looked}) and no Markdown file here",
        )
        return [Suite(name="docs", cases=[skip], properties={"checker": "builtin"})]
    site = Site(root=root)
    return [_page_suite(site, root / name) for name in names]


def run_docs(
    root: Path,
    *,
    book_dir: Path | None = None,
    settings: DocsSettings | None = None,
    checker: str = "auto",
    requirements: Requirements | None = None,
    progress: Progress | None = None,
) -> list[Suite]:
    """Check the project's book and README.md; without a book, its Markdown files.

    The book: ``book_dir`` (--book), else the one ``settings`` (matrix/docs.yaml)
    records, else the one ``find_book`` finds.  ``checker``: "builtin" is this
    module's checker alone; "auto" adds the real mdBook build.  A missing
    mdbook skips the build unless ``requirements`` require it (--require
    mdbook, CI); a build mdBook cannot do here for a reason of the book's (a
    book.toml for an older mdBook, generated chapters not here) is skipped
    unless --require mdbook names it."""
    if checker not in CHECKERS:
        raise UsageError(f"checker {checker!r}: choose one of {', '.join(CHECKERS)}")
    settings = settings or DocsSettings()
    root = Path(os.path.abspath(root))
    given = Path(os.path.abspath(book_dir)) if book_dir is not None else None
    book, how = resolve_book(root, given=given, settings=settings)
    if book is None:
        names = markdown_files(root)
        if progress:
            progress.note(f"docs: no mdBook here; checking the links of {len(names)} Markdown file(s)")
        return check_markdown(root, names)
    if progress:
        with_settings = f" ([{book.linkcheck.table}] settings)" if book.linkcheck.table else ""
        build = "" if checker == "builtin" else " and an mdbook build"
        progress.note(
            f"docs: checking {Site(root=root).rel(book.root)} ({how}) with the builtin checker{with_settings}{build}"
        )
    suites = check_book(root, book, settings.generated)
    if checker != "builtin":
        missing = sorted(
            Path(os.path.relpath(p, book.src)).as_posix() for p in generated_chapters(book, settings.generated)
        )
        build = build_suite(root, book, missing_generated=tuple(missing), requirements=requirements or Requirements())
        if build:
            suites.insert(0, build)
    readme = root / "README.md"
    if readme.is_file():
        suites.append(check_readme(root, readme))
    return suites


def external_links(suites: list[Suite]) -> list[str]:
    """The case names of links that were listed, not followed."""
    return [case.name for suite in suites for case in suite.cases if case.message.startswith("external link")]


def warnings(suites: list[Suite]) -> list[str]:
    """Findings linkcheck2's warning-policy = "warn" makes warnings, and what the build left out."""
    found = [case.message.removeprefix(WARNING) for s in suites for case in s.cases if case.message.startswith(WARNING)]
    left_out = [note for s in suites for note in s.properties.get("left-out", "").split("; ") if note]
    return left_out + found
