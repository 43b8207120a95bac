"""ccvm fmt and file discovery, with the real shfmt from the lint extra.

nixfmt has no PyPI or Debian package, so it is not on this machine: the
one test that needs a nixfmt uses a stand-in script (it says so below)
unless a real nixfmt is on PATH.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import run_ccvm

from ccvm.checks.fmt import run_fmt, shfmt_case
from ccvm.checks.sourcefiles import discover, is_shell_script
from ccvm.errors import ConfigError
from ccvm.matrix.style import Style
from ccvm.processes import find_program
from ccvm.report.results import Outcome
from ccvm.require import Requirements

ROOT = Path(__file__).resolve().parent.parent
STATIC = Path(__file__).resolve().parent / "fixtures" / "static"
SHELL = STATIC / "shell"


def make_project(tmp_path: Path, *names: str) -> Path:
    """A project directory (not a git work tree) with the repo's .editorconfig and some shell fixtures."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / ".editorconfig", project / ".editorconfig")
    for name in names:
        shutil.copy2(SHELL / name, project / name)
    return project


def cases(suites, suite_name: str) -> dict:
    suite = next(s for s in suites if s.name == suite_name)
    return {case.name: case for case in suite.cases}


def test_shell_scripts_are_found_by_extension_and_by_shebang():
    assert is_shell_script(SHELL / "clean.sh")
    assert is_shell_script(SHELL / "tool")  # #!/usr/bin/env bash, no extension
    assert not is_shell_script(SHELL / "notes.txt")
    assert not is_shell_script(SHELL / "helper")  # a python shebang
    assert not is_shell_script(SHELL / "zsh-only")


def test_walk_outside_git_skips_tool_directories(tmp_path):
    project = make_project(tmp_path, "clean.sh", "tool", "notes.txt", "helper")
    for skipped in (".venv/bin", ".nox/x", "reports", ".git/hooks"):
        (project / skipped).mkdir(parents=True)
        shutil.copy(SHELL / "clean.sh", project / skipped / "activate.sh")
    (project / "sub").mkdir()
    shutil.copy(SHELL / "clean.sh", project / "sub" / "deep.sh")
    (project / "default.nix").write_text("{ }\n")
    files = discover(project)
    assert not files.from_git
    assert files.shell == ("clean.sh", "sub/deep.sh", "tool")
    assert files.python == ("helper",)
    assert files.nix == ("default.nix",)


def test_in_git_tracked_and_untracked_files_count_ignored_ones_and_fixtures_never(tmp_path, git_bin):
    project = make_project(tmp_path, "clean.sh", "tool", "misformatted.sh")
    shutil.copy(SHELL / "misformatted.sh", project / "ignored.sh")
    (project / "tests" / "fixtures" / "static").mkdir(parents=True)
    shutil.copy(SHELL / "misformatted.sh", project / "tests" / "fixtures" / "static" / "bad.sh")
    (project / ".gitignore").write_text("ignored.sh\n")

    def git(*argv: str) -> None:
        subprocess.run([git_bin, "-C", str(project), *argv], check=True, capture_output=True, timeout=30)

    git("init", "-q")
    git("add", "clean.sh", "tool", "tests/fixtures/static/bad.sh")  # misformatted.sh stays untracked
    files = discover(project)
    assert files.from_git
    # An untracked file is part of the change the gate judges, so it is checked too.
    assert files.shell == ("clean.sh", "misformatted.sh", "tool")


def test_clean_scripts_pass(tmp_path):
    project = make_project(tmp_path, "clean.sh", "tool", "unquoted.sh")
    suites = run_fmt(project)
    assert [s.name for s in suites] == ["fmt.shfmt"]
    assert {name: c.outcome for name, c in cases(suites, "fmt.shfmt").items()} == {
        "clean.sh": Outcome.PASS,
        "tool": Outcome.PASS,
        "unquoted.sh": Outcome.PASS,
    }


def test_misformatted_script_fails_with_the_diff(tmp_path):
    project = make_project(tmp_path, "clean.sh", "misformatted.sh")
    before = (project / "misformatted.sh").read_text()
    case = cases(run_fmt(project), "fmt.shfmt")["misformatted.sh"]
    assert case.outcome is Outcome.FAIL
    assert "not formatted" in case.message
    assert '-    echo "args: $#"' in case.details and '+\techo "args: $#"' in case.details
    assert "+\t-h)" in case.details  # the case arm is indented: switch_case_indent from .editorconfig
    assert (project / "misformatted.sh").read_text() == before  # checking never writes


def test_editorconfig_is_what_shfmt_follows(tmp_path):
    project = make_project(tmp_path, "clean.sh")
    (project / ".editorconfig").write_text("root = true\n\n[[shell]]\nindent_style = space\nindent_size = 4\n")
    case = cases(run_fmt(project), "fmt.shfmt")["clean.sh"]
    assert case.outcome is Outcome.FAIL and "+    greet" in case.details


def test_fix_rewrites_in_place_then_the_check_passes(tmp_path):
    project = make_project(tmp_path, "misformatted.sh")
    fixed = cases(run_fmt(project, fix=True), "fmt.shfmt")["misformatted.sh"]
    assert fixed.outcome is Outcome.PASS and "rewritten" in fixed.output
    assert "\techo" in (project / "misformatted.sh").read_text()
    assert cases(run_fmt(project), "fmt.shfmt")["misformatted.sh"].outcome is Outcome.PASS


def test_unparsable_script_fails(tmp_path):
    project = make_project(tmp_path)
    (project / "broken.sh").write_text("#!/bin/sh\nif true; then\n")
    case = cases(run_fmt(project), "fmt.shfmt")["broken.sh"]
    assert case.outcome is Outcome.FAIL and "cannot parse" in case.message


def test_nix_files_are_skipped_never_passed_without_nixfmt(tmp_path, monkeypatch):
    project = make_project(tmp_path)
    shutil.copy(STATIC / "nix" / "default.nix", project / "default.nix")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_program("nixfmt", path_only=True) is None
    suites = run_fmt(project)
    case = cases(suites, "fmt.nixfmt")["default.nix"]
    assert case.outcome is Outcome.SKIP and "nixfmt not found" in case.message
    assert suites[0].outcome is Outcome.SKIP


def _nixfmt_on_path(tmp_path: Path, monkeypatch) -> None:
    """A real nixfmt when one is installed; otherwise a stand-in (nixfmt has
    no PyPI or Debian package): it formats by removing trailing blanks and
    fails on a line holding just '{' - enough to drive the code paths."""
    if shutil.which("nixfmt"):
        return
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nixfmt"
    fake.write_text(
        '#!/bin/sh\nfor f in "$@"; do\n\tif grep -qx "{" "$f"; then echo "$f:1: parse error" >&2; exit 1; fi\n'
        '\tsed -i "s/[ \t]*$//" "$f"\ndone\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_nixfmt_diff_fix_and_parse_error(tmp_path, monkeypatch):
    _nixfmt_on_path(tmp_path, monkeypatch)
    project = make_project(tmp_path)
    (project / "trailing.nix").write_text("{ a = 1; }   \n")
    (project / "broken.nix").write_text("{\n")
    found = cases(run_fmt(project), "fmt.nixfmt")
    assert found["trailing.nix"].outcome is Outcome.FAIL and "+{ a = 1; }" in found["trailing.nix"].details
    assert found["broken.nix"].outcome is Outcome.FAIL and "cannot parse" in found["broken.nix"].message
    assert (project / "trailing.nix").read_text() == "{ a = 1; }   \n"
    run_fmt(project, fix=True)
    assert cases(run_fmt(project), "fmt.nixfmt")["trailing.nix"].outcome is Outcome.PASS


def test_cli_exit_statuses_and_junit(tmp_path):
    bad = make_project(tmp_path, "clean.sh", "misformatted.sh")
    junit = tmp_path / "fmt.xml"
    run = run_ccvm("fmt", "--root", str(bad), "--junit", str(junit), timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL misformatted.sh: not formatted" in run.stdout
    assert "shfmt" in run.stdout and "fail" in run.stdout  # the table
    xml = ET.parse(junit).getroot()
    failures = xml.findall(".//testcase[@name='misformatted.sh']/failure")
    assert len(failures) == 1 and "@@" in (failures[0].text or "")
    assert xml.find(".//testcase[@name='clean.sh']/failure") is None

    fixed = run_ccvm("fmt", "--fix", "--root", str(bad), "--junit", str(junit), timeout=120)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    again = run_ccvm("fmt", "--root", str(bad), "--junit", str(junit), timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr

    usage = run_ccvm("fmt", "--root", str(tmp_path / "nowhere"), timeout=60)
    assert usage.returncode == 2 and "not a directory" in usage.stderr
    assert "Traceback" not in usage.stderr


def test_missing_shfmt_is_skipped_never_passed_and_fails_where_required(tmp_path, monkeypatch):
    project = make_project(tmp_path, "clean.sh")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "novenv" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    case = cases(run_fmt(project), "fmt.shfmt")["clean.sh"]
    assert case.outcome is Outcome.SKIP and "shfmt not found" in case.message and "lint extra" in case.message
    required = cases(run_fmt(project, requirements=Requirements(required=frozenset({"shfmt"}))), "fmt.shfmt")
    assert (
        required["clean.sh"].outcome is Outcome.FAIL and "(required: --require shfmt)" in required["clean.sh"].message
    )


def test_a_bad_shfmt_option_value_is_a_config_error_before_any_file(tmp_path):
    project = make_project(tmp_path, "misformatted.sh")
    before = (project / "misformatted.sh").read_text()
    style = Style(options={"shfmt": ("-i", "x")}, options_at={"shfmt": (project / "style.yaml", 4)})
    for fix in (False, True):
        with pytest.raises(ConfigError) as caught:
            run_fmt(project, fix=fix, style=style)
        message = str(caught.value)
        assert message.startswith(f"{project / 'style.yaml'}:4: shfmt rejects its options (-i x): invalid value")
        assert "\n" not in message
    assert (project / "misformatted.sh").read_text() == before


def test_shfmt_failing_without_a_parse_error_judges_nothing(tmp_path):
    # A file shfmt cannot read is not a parse error: no verdict, so the baseline keeps shfmt's entries.
    project = make_project(tmp_path)
    shfmt = find_program("shfmt")
    assert shfmt is not None
    for fix in (False, True):
        case, verdict = shfmt_case(shfmt, project, "gone.sh", fix=fix)
        assert case.outcome is Outcome.FAIL and verdict is None
        assert case.message.startswith("shfmt exited 1 without judging it: ") and "gone.sh" in case.message
    (project / "broken.sh").write_text("#!/bin/sh\nif true; then\n")
    case, verdict = shfmt_case(shfmt, project, "broken.sh", fix=False)
    assert verdict is not None and [f.rule for f in verdict.new] == ["parse-error"]
