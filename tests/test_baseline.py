"""The adoption baseline (matrix/baseline.yaml) with the real shfmt, shellcheck and
ruff: ccvm init records what a project has, fmt and lint report it as known and
fail on anything new, `ccvm baseline` prunes and records, and a baseline edited
into nonsense is one line with its file and line.

The projects are fixtures of our own writing (tests/fixtures/adopt/) that
reproduce what real projects have: scripts indented against their own
.editorconfig, a script shfmt cannot parse, a CI shellcheck at severity
warning, an unlinted Python script, a Nix-templated Python file, treefmt-nix
forcing shfmt's flags."""

from __future__ import annotations

import os
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from clirun import run_ccvm
from gitrepo import GitRepo, isolated_git_env
from junit_schema import assert_valid

from ccvm.checks.baseline import diff_findings, fingerprint, judge
from ccvm.checks.fmt import run_fmt
from ccvm.checks.lint import run_lint
from ccvm.errors import ConfigError
from ccvm.matrix.baseline import Baseline, Entry, dump_baseline, load_baseline
from ccvm.matrix.style import load_style
from ccvm.report.results import Outcome

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "adopt"
BIN = Path(sys.executable).parent
BAD_SCRIPT = '#!/usr/bin/env bash\nif [ -n "$1" ]; then\n        rm -rf $1/*\nfi\ncd /tmp\n'


def adopt(tmp_path: Path, fixture: str) -> GitRepo:
    repo = GitRepo.create(tmp_path / fixture, files={".gitignore": "reports/\n"})
    shutil.copytree(FIXTURES / fixture, repo.path, dirs_exist_ok=True)
    for stored in repo.path.rglob("*.py.txt"):  # kept as .py.txt so that ruff over tests/ never reads them
        stored.rename(stored.with_suffix(""))
    repo.commit(fixture)
    return repo


def ccvm(repo: GitRepo, *args: str, cwd: Path | None = None):
    env = {**isolated_git_env(), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env = {key: value for key, value in env.items() if not key.startswith("CCVM_")}
    return run_ccvm(*args, cwd=cwd or repo.path, env=env, timeout=300)


def outcomes(suites) -> dict[str, dict[str, Outcome]]:
    return {suite.name: {case.name: case.outcome for case in suite.cases} for suite in suites}


# --- fingerprints and judging -------------------------------------------------------------------------------------


def test_a_fingerprint_survives_moving_and_reindenting_the_line_but_not_another_rule():
    assert fingerprint("SC2086", "    rm $dir") == fingerprint("SC2086", "rm   $dir\t")
    assert fingerprint("SC2086", "rm $dir") != fingerprint("SC2046", "rm $dir")
    assert fingerprint("SC2086", "rm $dir") != fingerprint("SC2086", "rm $other")


def test_known_findings_are_counted_so_a_second_identical_one_is_new():
    diff = "--- a\n+++ a\n@@ -3,2 +3,2 @@\n-    fi\n+  fi\n-    fi\n+  fi\n"
    findings = diff_findings("shfmt", "a.sh", diff)
    assert [f.line for f in findings] == [3, 4]
    one = Baseline(
        entries=(Entry(tool="shfmt", file="a.sh", rule="unformatted", fingerprints=(findings[0].fingerprint,)),)
    )
    verdict = judge(findings, one, "shfmt", "a.sh")
    assert (len(verdict.known), len(verdict.new), verdict.gone) == (1, 1, 0)
    assert judge([], one, "shfmt", "a.sh").gone == 1


# --- the file -----------------------------------------------------------------------------------------------------


def test_the_baseline_file_round_trips(tmp_path):
    entries = [
        Entry(
            tool="shellcheck", file="bin/x", rule="SC2086", fingerprints=("0123456789ab",) * 2, setting=".shellcheckrc"
        ),
        Entry(tool="shfmt", file="bin/x", rule="unformatted", fingerprints=tuple(f"{n:012x}" for n in range(20))),
    ]
    (tmp_path / "baseline.yaml").write_text(dump_baseline(entries))
    loaded = load_baseline(tmp_path)
    assert {(e.tool, e.file, e.rule, e.setting, e.fingerprints) for e in loaded.entries} == {
        (e.tool, e.file, e.rule, e.setting, tuple(sorted(e.fingerprints))) for e in entries
    }
    assert loaded.count() == 22 and loaded.count("shellcheck") == 2


ONE = "version: 1\nfindings:\n  - tool: shfmt\n    file: a\n    rule: x\n"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("version: 2\nfindings: []\n", 1, "version must be 1"),
        (
            ONE.replace("shfmt", "pylint") + "    fingerprints: [0123456789ab]\n",
            3,
            "pylint",
        ),
        (
            ONE + "    fingerprints: [nothex]\n",
            6,
            "12 lowercase hex",
        ),
        (
            ONE.replace("file: a", "file: ../a") + "    fingerprints: [0123456789ab]\n",
            4,
            "inside it",
        ),
        (
            ONE + "    count: 3\n    fingerprints: [0123456789ab]\n",
            6,
            "does not match",
        ),
        (ONE + "    why: y\n", 6, "unknown key 'why'"),
        ("version: 1\nfindings: {a: 1}\n", 2, "must be a list"),
        ("version: 1\nfindings: [\n", 3, "malformed YAML"),
    ],
)
def test_a_baseline_edited_into_nonsense_is_one_line_with_file_and_line(tmp_path, text, line, words):
    (tmp_path / "baseline.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_baseline(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'baseline.yaml'}:{line}: ")
    assert words in str(caught.value)


def test_the_commands_refuse_a_nonsense_baseline_with_exit_2(tmp_path):
    repo = GitRepo.create(
        tmp_path / "p", files={"a.sh": "#!/bin/sh\necho a\n", "matrix/baseline.yaml": "findings: 3\n"}
    )
    for command in (["fmt"], ["lint"], ["baseline", "--prune"]):
        done = ccvm(repo, *command)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.strip().splitlines() == ["ccvm: error: matrix/baseline.yaml:1: version must be 1"]
    # named from where the command ran: relative under it, absolute elsewhere
    beside = ccvm(repo, "lint", "--root", "p", cwd=tmp_path)
    assert beside.stderr.strip() == "ccvm: error: p/matrix/baseline.yaml:1: version must be 1"
    (tmp_path / "elsewhere").mkdir()
    away = ccvm(repo, "lint", "--root", str(repo.path), cwd=tmp_path / "elsewhere")
    assert away.stderr.strip() == f"ccvm: error: {repo.path}/matrix/baseline.yaml:1: version must be 1"


# --- adoption on the fixture projects -----------------------------------------------------------------------------


def test_init_baselines_what_a_project_has_and_lists_its_own_rules_apart(tmp_path):
    repo = adopt(tmp_path, "per-script-editorconfig")
    init = ccvm(repo, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    out = init.stdout
    # Its own CI's shellcheck severity, with where it came from.
    assert "shellcheck: --severity=warning (.github/workflows/shellcheck.yml:13 uses ludeeus/action-shellcheck" in out
    style = (repo.path / "matrix" / "style.yaml").read_text()
    assert 'severity: "warning"' in style and "# from .github/workflows/shellcheck.yml:13" in style
    # vmrun breaks its own .editorconfig (two spaces asked, four written); vmreport has no rule: shfmt's defaults.
    own = next(line for line in out.splitlines() if "violates its own .editorconfig" in line)
    assert "shfmt vmrun" in own and "vmreport" not in own
    defaults = next(line for line in out.splitlines() if "under the tools' defaults" in line)
    assert "shfmt vmreport" in defaults and "ruff-check sumcheck" in defaults and "ruff-format sumcheck" in defaults
    assert "shfmt cannot parse vmfetch" in out
    baseline = yaml.safe_load((repo.path / "matrix" / "baseline.yaml").read_text())
    by_key = {(f["tool"], f["file"], f["rule"]): f for f in baseline["findings"]}
    assert by_key[("shfmt", "vmrun", "unformatted")]["setting"].startswith("indent_size = 2 (.editorconfig:7)")
    assert "setting" not in by_key[("shfmt", "vmreport", "unformatted")]
    assert ("shellcheck", "vmrun", "SC2086") not in by_key  # an info note: below the project's own severity
    repo.commit("adopt ccvm")

    for command in ("fmt", "lint"):
        done = ccvm(repo, command, "--junit", f"reports/{command}.xml")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "known finding(s) in matrix/baseline.yaml" in done.stdout
    assert_valid(repo.path / "reports" / "fmt.xml")  # known cases skipped, the suite's baseline properties
    assert_valid(repo.path / "reports" / "lint.xml")
    fmt_xml = ET.parse(repo.path / "reports" / "fmt.xml").getroot()
    skipped = fmt_xml.find(".//testcase[@name='vmrun']/skipped")
    assert skipped is not None and skipped.get("message", "").startswith("known: 9 finding(s) (unformatted x9)")
    assert skipped.get("type") == "baseline"  # the gate counts it as run: only new findings fail

    # A new badly formatted script with a shellcheck warning fails both, named.
    repo.write("vmclean", BAD_SCRIPT)
    repo.commit("a new script")
    fmt = ccvm(repo, "fmt")
    lint = ccvm(repo, "lint")
    assert (
        fmt.returncode == 1
        and "FAIL vmclean: not formatted (1 line(s)); run ccvm fmt --fix (or shfmt -w vmclean)" in fmt.stdout
    )
    assert lint.returncode == 1 and "FAIL vmclean:3:16: SC2115 (warning)" in lint.stdout
    assert "FAIL vmrun" not in fmt.stdout + lint.stdout


def test_known_lines_stay_known_when_code_moves_and_a_new_bad_line_fails_alone(tmp_path):
    repo = adopt(tmp_path, "per-script-editorconfig")
    assert ccvm(repo, "init").returncode == 0
    repo.commit("adopt")
    text = (repo.path / "vmreport").read_text()
    moved = text.replace("set -u\n", "set -u\n# a comment pushing everything down\n")
    repo.write("vmreport", moved)
    assert ccvm(repo, "fmt").returncode == 0
    repo.write("vmreport", moved + 'if true; then\n      echo "new, badly indented"\nfi\n')
    fmt = ccvm(repo, "fmt")
    assert fmt.returncode == 1
    assert "FAIL vmreport: not formatted (1 line(s))" in fmt.stdout
    assert '-      echo "new, badly indented"' in fmt.stdout
    assert "kvm: yes" not in fmt.stdout  # only the hunk with the new finding is shown
    assert "(and 5 finding(s) (unformatted x5) in matrix/baseline.yaml, known)" in fmt.stdout


def test_fixed_and_deleted_findings_are_named_and_prune_drops_them_never_adding(tmp_path):
    repo = adopt(tmp_path, "per-script-editorconfig")
    assert ccvm(repo, "init").returncode == 0
    before = load_baseline(repo.path / "matrix")
    repo.commit("adopt")
    (repo.path / "vmreport").unlink()
    fixed = ccvm(repo, "fmt", "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr  # vmrun rewritten to two spaces; vmfetch cannot parse
    repo.write("vmclean", BAD_SCRIPT)  # new: prune must not take it in
    fmt = ccvm(repo, "fmt")
    assert (
        "vmrun: 9 fixed" in fmt.stdout and "vmreport: 5 gone" in fmt.stdout and "`ccvm baseline --prune`" in fmt.stdout
    )
    prune = ccvm(repo, "baseline", "--prune")
    assert prune.returncode == 0 and "0 finding(s) added, 14 dropped" in prune.stdout, prune.stdout + prune.stderr
    after = load_baseline(repo.path / "matrix")
    assert after.count("shfmt") == before.count("shfmt") - 14
    assert "vmclean" not in after.files("shfmt")
    status = ccvm(repo, "baseline")
    assert "shfmt: 1 known, 1 new, 0 fixed or gone (new in vmclean: 1)" in status.stdout
    record = ccvm(repo, "baseline", "--record", "--tool", "shfmt")
    assert record.returncode == 0 and "1 finding(s) added, 0 dropped" in record.stdout
    assert ccvm(repo, "fmt").returncode == 0


def test_a_nix_templated_python_file_is_known_and_ruffs_own_excludes_apply(tmp_path):
    repo = adopt(tmp_path, "templated-python")
    init = ccvm(repo, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert "ruff-check modules/supervisor/handler.py" in init.stdout
    assert "ruff-format cannot parse modules/supervisor/handler.py" in init.stdout
    repo.commit("adopt")
    assert ccvm(repo, "lint").returncode == 0
    # The project says so itself: ruff's extend-exclude now leaves the file out, reported skipped.
    repo.write("pyproject.toml", '[tool.ruff]\nextend-exclude = ["modules/supervisor/handler.py"]\n')
    lint = ccvm(repo, "lint", "--junit", "reports/lint.xml")
    assert lint.returncode == 0, lint.stdout
    case = (
        ET.parse(repo.path / "reports" / "lint.xml")
        .getroot()
        .find(".//testsuite[@name='lint.ruff-check']/testcase[@name='modules/supervisor/handler.py']/skipped")
    )
    assert case is not None and "excluded by the project's ruff configuration" in case.get("message", "")
    assert case.get("type") is None  # left out by the project's rule, not known to the baseline
    assert "handler.py: 2 gone" in lint.stdout


def test_forced_treefmt_nix_shfmt_options_are_exactly_what_runs(tmp_path):
    repo = adopt(tmp_path, "treefmt-forced")
    init = ccvm(repo, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert (
        "shfmt: -i 2 -s -ci (nix/treefmt.nix:7 settings.formatter.shfmt.options = lib.mkForce [ ... ])" in init.stdout
    )
    assert "baseline: no findings at adoption" in init.stdout
    assert not (repo.path / "matrix" / "baseline.yaml").exists()
    style = load_style(repo.path / "matrix")
    assert style.shfmt_options == ("-i", "2", "-s", "-ci")
    suites = run_fmt(repo.path, tools=("shfmt",), style=style)
    assert outcomes(suites) == {"fmt.shfmt": {"bin/launch.sh": Outcome.PASS, "bin/probe.sh": Outcome.PASS}}
    assert "vendor/third.sh" not in outcomes(run_lint(repo.path, style=style)).get("lint.shellcheck", {})
    repo.write("bin/new.sh", "#!/bin/sh\ncase x in\nx) echo x ;;\nesac\n")
    case = next(c for c in run_fmt(repo.path, tools=("shfmt",), style=style)[0].cases if c.name == "bin/new.sh")
    assert case.outcome is Outcome.FAIL
    assert (
        case.message == "bin/new.sh: not formatted (1 line(s)); run ccvm fmt --fix (or shfmt -i 2 -s -ci -w bin/new.sh)"
    )


def _stand_in_nixfmt(directory: Path) -> str:
    """nixfmt has no PyPI or Debian package, so unless a real one is on PATH this stand-in formats by
    removing trailing blanks: enough to give nixfmt findings to record."""
    if shutil.which("nixfmt"):
        return os.environ["PATH"]
    directory.mkdir()
    fake = directory / "nixfmt"
    fake.write_text('#!/bin/sh\nfor f in "$@"; do sed -i "s/[ \\t]*$//" "$f"; done\n')
    fake.chmod(0o755)
    return f"{directory}{os.pathsep}{os.environ['PATH']}"


def test_require_fails_a_missing_nixfmt_but_not_the_files_the_baseline_knows(tmp_path):
    repo = GitRepo.create(tmp_path / "p", files={"default.nix": "{ a = 1; }   \n", ".gitignore": "reports/\n"})
    with_nixfmt = _stand_in_nixfmt(tmp_path / "bin")
    env = {**isolated_git_env(), "PATH": f"{BIN}{os.pathsep}{with_nixfmt}"}
    env = {key: value for key, value in env.items() if not key.startswith("CCVM_")}
    record = run_ccvm("baseline", "--record", "--tool", "nixfmt", cwd=repo.path, env=env, timeout=120)
    assert record.returncode == 0 and "1 finding(s) added" in record.stdout, record.stdout + record.stderr
    required = run_ccvm("fmt", "--tool", "nixfmt", "--require", "nixfmt", cwd=repo.path, env=env, timeout=120)
    assert required.returncode == 0, required.stdout + required.stderr
    assert "1 known finding(s) in 1 file(s) (matrix/baseline.yaml)" in required.stdout
    env["PATH"] = str(BIN)  # no nixfmt at all: required, so its skip fails
    missing = run_ccvm("fmt", "--tool", "nixfmt", "--require", "nixfmt", cwd=repo.path, env=env, timeout=120)
    assert missing.returncode == 1 and "(required: --require nixfmt)" in missing.stdout


def test_options_shfmt_rejects_are_one_line_exit_2_and_never_cost_the_baseline_its_entries(tmp_path):
    # Found adopting ccvm on a real project: an unknown flag in style.yaml made every file "cannot parse it"
    # (with shfmt's usage text), so the baselined findings looked fixed and --prune dropped them all.
    tabbed = "#!/bin/sh\nif true; then\n\t\techo a\nfi\n"
    repo = GitRepo.create(tmp_path / "p", files={"a.sh": tabbed, ".gitignore": "reports/\n"})
    record = ccvm(repo, "baseline", "--record", "--tool", "shfmt")
    assert record.returncode == 0 and "1 finding(s) added" in record.stdout, record.stdout + record.stderr
    style = repo.path / "matrix" / "style.yaml"
    style.write_text('# the project\'s settings\nshfmt:\n  options: [-i, "4", --frob]\n')
    known = (repo.path / "matrix" / "baseline.yaml").read_text()
    expected = [
        "ccvm: error: matrix/style.yaml:3: shfmt rejects its options (-i 4 --frob): "
        "flag provided but not defined: -frob; give only options this shfmt knows (shfmt --help lists them), "
        "or none to follow .editorconfig"
    ]
    for command in (["fmt"], ["fmt", "--fix"], ["baseline", "--prune"], ["baseline", "--record"]):
        done = ccvm(repo, *command)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.strip().splitlines() == expected, command
        assert "usage:" not in done.stdout + done.stderr and "fixed" not in done.stdout
        assert (repo.path / "a.sh").read_text() == tabbed  # --fix rewrote nothing
        assert (repo.path / "matrix" / "baseline.yaml").read_text() == known
    style.write_text('shfmt:\n  options: [-i, "0"]\n')  # fixed: the finding is still known, none is new
    fmt = ccvm(repo, "fmt")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    # the known finding is reported skipped, and not counted among what ran to a verdict
    assert "fmt: 0 checked, 0 failed, 1 skipped (1 known finding(s) in matrix/baseline.yaml)" in fmt.stdout
    prune = ccvm(repo, "baseline", "--prune")
    assert prune.returncode == 0 and "nothing to change" in prune.stdout, prune.stdout + prune.stderr
