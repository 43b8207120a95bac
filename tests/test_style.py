"""Formatting and lint follow the project: matrix/style.yaml's shfmt options,
file globs and shellcheck severity, the project's .editorconfig (shfmt reads
it when given no flags) and .shellcheckrc (shellcheck finds it from the
project root).  Real shfmt and shellcheck from the lint extra."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from clirun import run_ccvm

from ccvm.checks.fmt import run_fmt
from ccvm.checks.lint import run_lint
from ccvm.cli import main
from ccvm.errors import ConfigError
from ccvm.matrix.style import load_style
from ccvm.report.results import Outcome

SHELL = Path(__file__).resolve().parent / "fixtures" / "static" / "shell"
TWO_SPACES = """#!/bin/sh
# Formatted as shfmt -i 2 -s -ci formats it.
set -eu

greet() {
  case "$1" in
    morning) echo "good morning" ;;
    *) echo "hello, $1" ;;
  esac
}

greet "$@"
"""


def outcomes(suites) -> dict[str, Outcome]:
    return {case.name: case.outcome for suite in suites for case in suite.cases}


def project(tmp_path: Path, style: str | None = None, **files: str) -> Path:
    root = tmp_path / "project"
    (root / "matrix").mkdir(parents=True)
    if style is not None:
        (root / "matrix" / "style.yaml").write_text(style)
    for name, text in files.items():
        path = root / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_shfmt_takes_the_style_options(tmp_path):
    root = project(tmp_path, 'shfmt:\n  options: [-i, "2", -s, -ci]\n', **{"greet.sh": TWO_SPACES})
    assert outcomes(run_fmt(root, tools=("shfmt",), style=load_style(root / "matrix"))) == {"greet.sh": Outcome.PASS}
    # Without options shfmt formats with tabs (its default) and the same file fails.
    assert outcomes(run_fmt(root, tools=("shfmt",), style=load_style(tmp_path))) == {"greet.sh": Outcome.FAIL}


def test_without_options_shfmt_reads_editorconfig_itself(tmp_path):
    editorconfig = "root = true\n\n[*.sh]\nindent_style = space\nindent_size = 2\nswitch_case_indent = true\n"
    root = project(tmp_path, None, **{"greet.sh": TWO_SPACES.replace(" -s -ci", ""), ".editorconfig": editorconfig})
    assert outcomes(run_fmt(root, tools=("shfmt",), style=load_style(root / "matrix"))) == {"greet.sh": Outcome.PASS}
    (root / ".editorconfig").unlink()
    assert outcomes(run_fmt(root, tools=("shfmt",), style=load_style(root / "matrix"))) == {"greet.sh": Outcome.FAIL}


def test_file_globs_select_what_each_tool_takes(tmp_path):
    style = "shfmt:\n  exclude: [vendor/]\nshellcheck:\n  include: [bin/*.sh]\n"
    root = project(
        tmp_path,
        style,
        **{"vendor__theirs.sh": "#!/bin/sh\nif true; then\necho x\nfi\n", "bin__ours.sh": "#!/bin/sh\necho ok\n"},
    )
    loaded = load_style(root / "matrix")
    assert set(outcomes(run_fmt(root, tools=("shfmt",), style=loaded))) == {"bin/ours.sh"}
    assert set(outcomes(run_lint(root, style=loaded))) == {"bin/ours.sh"}


def test_shellcheck_honours_shellcheckrc_and_the_declared_severity(tmp_path):
    root = project(tmp_path, None)
    shutil.copy(SHELL / "unquoted.sh", root / "unquoted.sh")
    assert outcomes(run_lint(root)) == {"unquoted.sh": Outcome.FAIL}  # SC2086, an info-level finding
    (root / ".shellcheckrc").write_text("disable=SC2086\n")
    assert outcomes(run_lint(root)) == {"unquoted.sh": Outcome.PASS}
    (root / ".shellcheckrc").unlink()
    (root / "matrix" / "style.yaml").write_text("shellcheck:\n  severity: warning\n")
    assert outcomes(run_lint(root, style=load_style(root / "matrix"))) == {"unquoted.sh": Outcome.PASS}


def test_the_cli_reads_style_from_the_projects_matrix(tmp_path, capsys):
    root = project(tmp_path, 'shfmt:\n  options: [-i, "2", -s, -ci]\n', **{"greet.sh": TWO_SPACES})
    junit = tmp_path / "fmt.xml"
    assert main(["fmt", "--tool", "shfmt", "--root", str(root), "--junit", str(junit)]) == 0
    out, err = capsys.readouterr()
    assert "shfmt -i 2 -s -ci (matrix/style.yaml)" in out + err
    # --matrix points elsewhere (no style.yaml there): shfmt's defaults, and the file fails.
    assert main(["--matrix", str(tmp_path), "fmt", "--tool", "shfmt", "--root", str(root), "--junit", str(junit)]) == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("shellcheck:\n  severity: loud\n", "style.yaml:2: severity 'loud'"),
        ("shfmt:\n  indent: 2\n", "unknown key"),
        ("shfmt:\n  exclude: ['[oops']\n", "style.yaml:2"),
        ("black: {}\n", "unknown key"),
    ],
)
def test_bad_style_names_file_and_line(tmp_path, text, words):
    (tmp_path / "style.yaml").write_text(text)
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("(", r"\(")):
        load_style(tmp_path)


@pytest.mark.parametrize("command", ["fmt", "lint"])
def test_a_named_matrix_that_is_not_there_is_an_error_not_default_settings(tmp_path, command):
    env = {**os.environ, "CCVM_MATRIX": str(tmp_path / "no-such-matrix")}
    result = run_ccvm(command, "--root", str(tmp_path), "--junit", str(tmp_path / "j.xml"), env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ccvm: error: no-such-matrix: matrix directory not found; fix --matrix or CCVM_MATRIX"
    ]
