"""The gate: path globs, gate.yaml, planning, and `ccvm gate` end to end in
temporary git repositories whose gate.yaml (tests/fixtures/gate) runs
stand-in checks (small shell scripts) instead of lint, pytest or QEMU."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import run_ccvm
from gitrepo import GitRepo, isolated_git_env
from junit_schema import assert_valid

from ccvm import processes
from ccvm.ci import attest, gitchange
from ccvm.ci.gate import (
    Requirement,
    Status,
    _write_log,
    check_env,
    junit_verdict,
    plan_change,
    required_checks,
    resolve_argv,
)
from ccvm.errors import ConfigError, UsageError
from ccvm.matrix.gate_rules import TTY_ATTESTATION, compile_glob
from ccvm.matrix.model import load_matrix

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gate"
CODE_SET = ["lint", "fmt", "host", "tests", "drift", "boot-x86_64-tcg-q35"]


# --- globs --------------------------------------------------------------------------------------------------------

GLOB_CASES = [
    # glob, path, matches
    ("docs/**", "docs/index.md", True),
    ("docs/**", "docs/src/deep/page.md", True),
    ("docs/**", "docs", False),
    ("docs/**", "mydocs/x.md", False),
    ("docs/", "docs/a/b.md", True),
    ("docs/", "sub/docs/a.md", True),  # a trailing slash alone does not anchor
    ("src/docs/", "src/docs/a.md", True),
    ("src/docs/", "x/src/docs/a.md", False),
    ("*.md", "README.md", True),
    ("*.md", "docs/src/cli.md", True),  # no slash: the file name at any depth
    ("*.md", "README.md.orig", False),
    ("*.nix", "flake.nix", True),
    ("*.nix", "nix/guest/default.nix", True),
    ("/*.md", "README.md", True),  # a leading slash anchors at the root
    ("/*.md", "docs/x.md", False),
    ("ccvm/*.py", "ccvm/gate.py", True),
    ("ccvm/*.py", "ccvm/commands/gate.py", False),  # * never crosses a /
    ("ccvm/**", "ccvm/commands/gate.py", True),
    ("ccvm/**/*.sh", "ccvm/init.sh", True),  # ** may be no directory at all
    ("ccvm/**/*.sh", "ccvm/guest/deep/init.sh", True),
    ("ccvm/**/*.sh", "ccvm/guest/init.py", False),
    ("**/conftest.py", "conftest.py", True),
    ("**/conftest.py", "tests/a/conftest.py", True),
    ("**", "anything/at/all", True),
    ("matrix/boot.yaml", "matrix/boot.yaml", True),
    ("matrix/boot.yaml", "matrix/boot.yaml.bak", False),
    ("matrix/boot.yaml", "x/matrix/boot.yaml", False),  # a slash anchors
    ("noxfile.py", "sub/noxfile.py", True),
    ("test_?.py", "tests/test_a.py", True),
    ("test_?.py", "tests/test_ab.py", False),
    ("[ab].txt", "a.txt", True),
    ("[!ab].txt", "a.txt", False),
    ("[!ab].txt", "c.txt", True),
    ("[a-c]x", "bx", True),
    ("[]]x", "]x", True),
    (r"file\[.txt", "file[.txt", True),
    ("build", "build/x.o", True),  # a matching directory covers what is in it
    ("src/build", "src/build/a/b.o", True),
    ("src/build", "x/src/build/a.o", False),
    ("*.py", "a.py/x", True),
    ("src/*.py", "src/a/b.py", False),
    (r"\*.md", "*.md", True),
    (r"\*.md", "a.md", False),
    ("a.b", "axb", False),  # regex characters are literal
    ("a+(b)", "a+(b)", True),
    (".ci/**", ".ci/setup", True),
    ("*", ".gitignore", True),  # * matches a leading dot, as in .gitignore
    ("docs/*.md", "docs/a\nb.md", True),  # odd file names are still file names
]


@pytest.mark.parametrize(("glob", "path", "expected"), GLOB_CASES)
def test_glob(glob, path, expected):
    assert compile_glob(glob).matches(path) is expected


def test_globs_agree_with_git_check_ignore(tmp_path):
    """The same globs as .gitignore lines, asked of git itself."""
    cases = [(glob, path, expected) for glob, path, expected in GLOB_CASES if "\n" not in path]
    for index, (glob, path, expected) in enumerate(cases):
        repo = tmp_path / str(index)
        subprocess.run(["git", "init", "-q", str(repo)], env=isolated_git_env(), check=True, timeout=60)
        (repo / ".gitignore").write_text(glob + "\n")
        done = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", path], cwd=repo, env=isolated_git_env(), timeout=60
        )
        assert (done.returncode == 0) is expected, f"git disagrees on {glob!r} vs {path!r}"


@pytest.mark.parametrize("bad", ["", "/", "a//b", "!docs/**", "file[.txt", "[z-a]", "src/x[9-0].py"])
def test_malformed_globs_are_refused(bad):
    with pytest.raises(ValueError):
        compile_glob(bad)


# --- gate.yaml ----------------------------------------------------------------------------------------------------


@pytest.fixture
def matrix_dir(tmp_path) -> Path:
    target = tmp_path / "matrix"
    shutil.copytree(ROOT / "matrix", target)
    return target


def write_gate(matrix_dir: Path, text: str) -> Path:
    path = matrix_dir / "gate.yaml"
    path.write_text(text)
    return path


MINIMAL = """\
checks:
  lint: {run: [sh, -c, "exit 0"], reproduce: "nox -s lint"}
  docs: {run: [sh, -c, "exit 0"], reproduce: "nox -s docs"}
rules:
  - paths: ["docs/**"]
    require: [docs]
"""


def test_the_project_gate_yaml_loads_through_the_matrix():
    rules = load_matrix(ROOT / "matrix").gate
    assert rules.base == "main"
    assert {
        "lint",
        "fmt",
        "host",
        "tests",
        "drift",
        "docs",
        "build",
        "boot-x86_64-tcg-q35",
        "boot-aarch64-tcg-virt",
    } <= {check.name for check in rules.checks}
    assert all(check.timeout_s > 0 and check.reproduce for check in rules.checks)


def test_defaults(matrix_dir):
    rules = load_matrix(write_gate(matrix_dir, MINIMAL).parent).gate
    assert rules.base == "main" and rules.otherwise == () and rules.terminal == ()
    assert rules.check("lint").timeout_s == 1800.0


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (MINIMAL.replace("require: [docs]", "require: [docs, lnt]"), 6, "unknown check 'lnt' (did you mean 'lint'?)"),
        (MINIMAL + "otherwise: [lint, fmt]\n", 7, "unknown check 'fmt'"),
        (
            MINIMAL.replace('reproduce: "nox -s lint"', 'reproduce: "nox -s lint", timout: 5'),
            2,
            "unknown key 'timout' in check 'lint' (did you mean 'timeout'?)",
        ),
        (
            MINIMAL.replace('reproduce: "nox -s lint"', 'reproduce: "nox -s lint", timeout: 0'),
            2,
            "timeout must be a positive number",
        ),
        *(
            (
                MINIMAL.replace('reproduce: "nox -s lint"', f'reproduce: "nox -s lint", timeout: {value}'),
                2,
                "timeout must be a positive number of seconds, at most 604800 (7 days)",
            )
            for value in (".inf", ".nan", "-.inf", "604801")
        ),
        (MINIMAL.replace('paths: ["docs/**"]', 'paths: ["docs/[z-a]"]'), 5, "bad character range z-a"),
        (MINIMAL + "terminal: [ok, '[z-a]']\n", 7, "path glob '[z-a]' is not a valid glob"),
        (
            MINIMAL.replace('{run: [sh, -c, "exit 0"], reproduce: "nox -s lint"}', "{run: [sh]}"),
            2,
            "check 'lint' is missing 'reproduce'",
        ),
        (
            MINIMAL.replace('run: [sh, -c, "exit 0"], reproduce: "nox -s lint"', "run: [], reproduce: x"),
            2,
            "run is empty",
        ),
        (MINIMAL.replace('paths: ["docs/**"]', 'paths: ["docs//x"]'), 5, "empty segment"),
        (MINIMAL.replace("docs: {", "tty-attestation: {"), 3, "reserved"),
        (MINIMAL.replace("rules:\n  - paths", "rules:\n  - pahts"), 5, "unknown key 'pahts' in a rule"),
        (MINIMAL + "extra: 1\n", 7, "unknown key 'extra' in gate.yaml"),
    ],
)
def test_bad_gate_yaml_names_file_and_line(matrix_dir, text, line, message):
    path = write_gate(matrix_dir, text)
    with pytest.raises(ConfigError) as caught:
        load_matrix(matrix_dir)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)


# --- planning with the project's rules ----------------------------------------------------------------------------


def project_plan(*changed: str) -> list[str]:
    rules = load_matrix(ROOT / "matrix").gate
    plan = plan_change(rules, base_ref="main", merge_base="0" * 40, tree="1" * 40, changed=tuple(sorted(changed)))
    return [requirement.name for requirement in plan.requirements]


def test_project_docs_only_change_needs_docs_and_drift_alone():
    assert project_plan("docs/src/cli.md", "README.md") == ["drift", "docs"]


def test_project_code_change_needs_the_code_set():
    assert project_plan("ccvm/ci/gate.py") == CODE_SET
    assert project_plan("tests/test_gate.py") == CODE_SET
    assert project_plan("matrix/gate.yaml") == CODE_SET


def test_project_arch_specific_change_adds_the_aarch64_cell():
    assert project_plan("ccvm/matrix/axes.py") == [*CODE_SET, "boot-aarch64-tcg-virt"]
    assert project_plan("ccvm/launcher/boot.py") == [*CODE_SET, "boot-aarch64-tcg-virt"]


def test_project_nix_change_adds_the_build():
    assert project_plan("flake.nix") == [*CODE_SET[:2], "nixfmt", *CODE_SET[2:5], "build", "flake-check", CODE_SET[5]]
    assert "build" in project_plan("nix/guest/default.nix")


def test_project_terminal_change_needs_a_human():
    assert project_plan("ccvm/qemu/console.py")[-1] == TTY_ATTESTATION
    assert project_plan("ccvm/qemu/argv.py") == [*CODE_SET, "boot-aarch64-tcg-virt", TTY_ATTESTATION]
    assert TTY_ATTESTATION not in project_plan("ccvm/ci/gate.py")


def test_project_unknown_path_gets_the_full_code_set():
    assert project_plan(".gitignore") == CODE_SET


def test_required_checks_says_which_paths_require_each(matrix_dir):
    rules = load_matrix(write_gate(matrix_dir, MINIMAL + "otherwise: [lint]\n").parent).gate
    by_check, unmatched = required_checks(rules, ("docs/a.md", "docs/b.md", "setup.cfg"))
    assert by_check == {"lint": ["setup.cfg"], "docs": ["docs/a.md", "docs/b.md"]}
    assert unmatched == ("setup.cfg",)


def test_nothing_changed_requires_nothing():
    assert project_plan() == []


def test_resolve_argv_runs_this_ccvm_and_this_python():
    assert resolve_argv(("ccvm", "lint")) == [sys.executable, "-m", "ccvm", "lint"]
    assert resolve_argv(("python", "-m", "pytest")) == [sys.executable, "-m", "pytest"]
    assert resolve_argv(("sh", "-c", "ccvm")) == ["sh", "-c", "ccvm"]


def test_checks_do_not_inherit_the_repository_location_a_hook_exports(monkeypatch, tmp_path):
    monkeypatch.setenv("GIT_DIR", "/elsewhere/.git")
    monkeypatch.setenv("GIT_INDEX_FILE", "/elsewhere/.git/index")
    env = check_env(tmp_path / "matrix")
    assert "GIT_DIR" not in env and "GIT_INDEX_FILE" not in env
    assert env["CCVM_MATRIX"] == str((tmp_path / "matrix").resolve())


# --- a check's own JUnit -------------------------------------------------------------------------------------------


def _junit(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "check.xml"
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="s">{body}</testsuite></testsuites>')
    return path


def test_junit_verdict_passes_only_cases_that_all_ran(tmp_path):
    assert junit_verdict(_junit(tmp_path, '<testcase name="a"/><testcase name="b"/>')) == (Status.PASS, "")


def test_junit_verdict_skipped_case(tmp_path):
    path = _junit(tmp_path, '<testcase name="a" classname="boot.x"><skipped message="no QEMU"/></testcase>')
    assert junit_verdict(path) == (Status.SKIP, "boot.x a skipped: no QEMU")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('<testcase name="a"><failure message="status 1"/></testcase>', "a failed: status 1"),
        ('<testcase name="a"><error>boom</error></testcase>', "a failed: boom"),
        ("", "has no test cases"),
        ("<testcase", "is unreadable"),
    ],
)
def test_junit_verdict_failures(tmp_path, body, reason):
    status, why = junit_verdict(_junit(tmp_path, body))
    assert status is Status.FAIL and reason in why


def test_junit_verdict_missing_file_fails(tmp_path):
    assert junit_verdict(tmp_path / "none.xml")[0] is Status.FAIL


def test_junit_verdict_reads_what_ccvm_boot_writes():
    # The golden boot JUnit holds a failed case and a skipped one: the failure wins.
    status, why = junit_verdict(FIXTURE.parent / "junit" / "boot-golden.xml")
    assert (status, why) == (Status.FAIL, "boot.x86_64-tcg-q35 exit-status failed: status 0, expected 7")


# --- ccvm gate end to end -----------------------------------------------------------------------------------------


class GateRepo(GitRepo):
    marks: Path

    def gate(self, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
        return self.ccvm("gate", *args, cwd=cwd, **env)

    def ccvm(self, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
        return run_ccvm(
            *args, cwd=cwd or self.path, env={**isolated_git_env(), "GATE_MARKS": str(self.marks), **env}, timeout=300
        )

    def ran(self) -> set[str]:
        return {path.name for path in self.marks.iterdir()}

    def plan(self) -> list[str]:
        done = self.gate("--plan", "--json")
        assert done.returncode == 0, done.stderr
        return [requirement["name"] for requirement in json.loads(done.stdout)["requirements"]]


@pytest.fixture
def repo(tmp_path) -> GateRepo:
    made = GateRepo(tmp_path / "repo")
    made.marks = tmp_path / "marks"
    made.marks.mkdir()
    shutil.copytree(ROOT / "matrix", made.path / "matrix")  # the loader wants every matrix file
    shutil.copyfile(FIXTURE / "gate.yaml", made.path / "matrix" / "gate.yaml")
    shutil.copytree(FIXTURE / "tools", made.path / "tools")
    GitRepo.create(
        made.path,
        files={
            "README.md": "# app\n",
            ".gitignore": "reports/\n",
            "src/app.py": "A = 1\n",
            "src/console.py": "TERM = 1\n",
            "docs/index.md": "# docs\n",
        },
    )
    made.branch("feature")
    return made


def junit_cases(path: Path) -> dict[str, str]:
    """testcase name -> pass, failure or skipped; the file must be valid against junit-10.xsd."""
    assert_valid(path)
    found = {}
    for case in ET.parse(path).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "skipped", "error")]
        found[case.get("name")] = kinds[0] if kinds else "pass"
    return found


def test_docs_only_change_plans_and_runs_only_docs_and_drift(repo):
    repo.write("docs/index.md", "# docs, better\n")
    repo.write("docs/new.md", "untracked page\n")
    assert repo.plan() == ["drift", "docs"]
    assert repo.ran() == set()  # planning runs nothing
    done = repo.gate()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gate: passed (2 requirement(s))" in done.stdout
    assert repo.ran() == set()  # neither of the two leaves a mark; nothing booted
    assert junit_cases(repo.path / "reports/junit/gate.xml") == {"drift": "pass", "docs": "pass"}


def test_code_change_runs_the_code_checks_in_the_checklist(repo):
    repo.write("src/app.py", "A = 2\n")
    done = repo.gate()
    assert done.returncode == 0, done.stdout + done.stderr
    assert repo.ran() == {"lint", "tests", "boot-x86_64-tcg-q35"}
    for name in ("lint", "tests", "drift", "boot-x86_64-tcg-q35"):
        assert any(line.startswith("[x] " + name) for line in done.stdout.splitlines()), done.stdout
    assert (repo.path / "reports/gate/lint.log").read_text().count("lint: all good") == 1


def test_terminal_change_needs_a_current_attestation(repo):
    repo.write("src/console.py", "TERM = 2\n")
    assert repo.plan()[-1] == TTY_ATTESTATION

    without = repo.gate()
    assert without.returncode == 1
    assert "[?] tty-attestation" in without.stdout and "needs a human" in without.stdout
    assert 'ccvm attest tty --note "what you checked"' in without.stdout
    assert "vim, less" in without.stdout
    assert "no automated check on this tree; run: ccvm attest tty --auto" in without.stdout
    assert junit_cases(repo.path / "reports/junit/gate.xml")[TTY_ATTESTATION] == "failure"

    # the machine's part, recorded for this tree, stands beside the person's word but is not it
    attest.record_automated(repo.path, "tty", passed=True, cells=("x86_64-tcg-q35",), cases=17, failed=())
    automated = repo.gate()
    assert automated.returncode == 1 and "[?] tty-attestation" in automated.stdout
    assert "the automated check passed (17 cases on x86_64-tcg-q35)" in automated.stdout

    attested = repo.ccvm("attest", "tty", "--note", "resized the window; vim, less and vi-mode behave")
    assert attested.returncode == 0, attested.stderr
    passing = repo.gate()
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "[x] tty-attestation" in passing.stdout
    assert "the automated check passed (17 cases on x86_64-tcg-q35)" in passing.stdout

    repo.write("src/app.py", "A = 3\n")  # any further edit, even outside the terminal paths
    stale = repo.gate()
    assert stale.returncode == 1
    assert "[?] tty-attestation" in stale.stdout and "the tree has changed since" in stale.stdout


def test_attestation_is_not_part_of_the_change(repo):
    repo.write("src/console.py", "TERM = 2\n")
    before = repo.plan()
    assert repo.ccvm("attest", "tty", "--note", "checked").returncode == 0
    assert repo.plan() == before
    assert repo.git("status", "--porcelain") == " M src/console.py\n"


def test_failing_check_fails_the_gate_and_prints_how_to_reproduce(repo):
    repo.write("src/app.py", "A = 2\n")
    done = repo.gate(GATE_FAIL="lint")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any(line.startswith("[!] lint") and line.endswith("fail") for line in lines), done.stdout
    assert "exited with status 1" in done.stdout
    assert "lint: found a problem in src/app.py line 3" in done.stdout  # the output's tail
    assert "  lint: nox -s lint" in lines[lines.index("To reproduce what did not pass:") :]
    assert "gate: 1 of 4 requirement(s) did not pass" in done.stderr
    assert junit_cases(repo.path / "reports/junit/gate.xml") == {
        "lint": "failure",
        "tests": "pass",
        "drift": "pass",
        "boot-x86_64-tcg-q35": "pass",
    }


def test_junit_goes_where_asked(repo, tmp_path):
    repo.write("docs/index.md", "changed\n")
    done = repo.gate("--junit", str(tmp_path / "out" / "g.xml"))
    assert done.returncode == 0
    assert junit_cases(tmp_path / "out" / "g.xml") == {"drift": "pass", "docs": "pass"}


def test_gate_from_a_subdirectory_writes_reports_at_the_root_and_keeps_the_attestation(repo):
    repo.write(".gitignore", "/reports/\n")  # as in the project: only the root's reports/ is ignored
    repo.write("src/console.py", "TERM = 2\n")
    assert repo.ccvm("attest", "tty", "--note", "checked").returncode == 0
    sub = repo.path / "docs"
    for _ in range(2):  # a reports/ written into docs/ would change the tree and stale the attestation
        done = repo.gate(cwd=sub)
        assert done.returncode == 0, done.stdout + done.stderr
    assert not (sub / "reports").exists()
    assert junit_cases(repo.path / "reports/junit/gate.xml")[TTY_ATTESTATION] == "pass"
    assert (repo.path / "reports/gate/lint.log").is_file()


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--reports", "/proc/nope", "--reports /proc/nope: cannot make /proc/nope/gate: No such file or directory"),
        ("--junit", "DIR", "--junit {tmp}/DIR: cannot write the JUnit file: Is a directory"),
    ],
)
def test_unwritable_output_paths_stop_the_gate_before_any_check_runs(repo, tmp_path, option, value, words):
    (tmp_path / "DIR").mkdir()
    repo.write("src/app.py", "A = 2\n")
    done = repo.gate(option, value.replace("DIR", str(tmp_path / "DIR")))
    assert done.returncode == 2
    assert done.stderr == f"ccvm: error: {words.format(tmp=tmp_path)}\n"
    assert repo.ran() == set()


def test_a_check_log_that_cannot_be_written_is_a_usage_error(tmp_path):
    done = processes.Completed(argv=("true",), returncode=0, stdout="", stderr="")
    with pytest.raises(UsageError) as caught:
        _write_log(Path("/proc/nope/gate/lint.log"), ["true"], done, 0.1)
    assert str(caught.value).startswith("--reports: cannot write the check log /proc/nope/gate/lint.log: ")


def test_a_check_whose_junit_reports_a_skip_is_skipped_and_fails_the_gate(repo):
    repo.write("src/arch/x86.py", "\n")
    done = repo.gate()
    assert done.returncode == 1
    assert "[-] boot-aarch64-tcg-virt" in done.stdout
    assert "qemu-system-aarch64 not found on PATH" in done.stdout
    assert "  boot-aarch64-tcg-virt: nox -s boot -- --cell aarch64-tcg-virt" in done.stdout
    assert junit_cases(repo.path / "reports/junit/gate.xml")["boot-aarch64-tcg-virt"] == "skipped"


def test_a_check_that_cannot_run_is_skipped_and_fails_the_gate(repo):
    repo.write("needs-tool/x", "\n")
    done = repo.gate()
    assert done.returncode == 1
    assert "[-] missing-tool" in done.stdout and "ccvm-test-no-such-tool not found on PATH" in done.stdout


def test_a_check_past_its_timeout_is_killed_and_fails(repo):
    repo.write("slow/x", "\n")
    done = repo.gate()
    assert done.returncode == 1
    assert "[!] slow" in done.stdout and "timed out after 1s" in done.stdout


def test_independent_checks_run_at_the_same_time(repo):
    repo.write("pair/x", "\n")  # pair-a and pair-b each wait for the other to start
    done = repo.gate("--jobs", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {"a", "b"} <= repo.ran()


def test_no_change_passes_with_nothing_required(repo):
    done = repo.gate()
    assert done.returncode == 0
    assert "nothing required" in done.stdout


def test_a_missing_base_is_one_clear_line(repo):
    done = repo.gate("--base", "trunk")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ccvm: error: cannot find the main branch: neither 'trunk' nor 'origin/trunk' exists; "
        "pass --base REF or set base: in matrix/gate.yaml"
    ]


def test_base_from_the_command_line(repo):
    repo.write("src/app.py", "A = 2\n")
    repo.commit("feature work")
    repo.git("branch", "-q", "trunk", "HEAD")
    plan = json.loads(repo.gate("--plan", "--json", "--base", "trunk").stdout)
    assert (plan["base"], plan["changed"], plan["requirements"]) == ("trunk", [], [])


def test_plan_json_describes_each_requirement(repo):
    repo.write("src/console.py", "TERM = 2\n")
    plan = json.loads(repo.gate("--plan", "--json").stdout)
    assert plan["base"] == "main" and plan["changed"] == ["src/console.py"]
    assert plan["tree"] == gitchange.tree_hash(repo.path)
    lint = plan["requirements"][0]
    assert lint == {
        "name": "lint",
        "because": ["src/console.py"],
        "reproduce": "nox -s lint",
        "kind": "check",
        "run": ["sh", "tools/check.sh", "lint"],
        "timeout": 1800.0,
    }
    human = plan["requirements"][-1]
    assert (human["name"], human["kind"], human["attested"]) == (TTY_ATTESTATION, "human", False)


def test_bad_gate_yaml_is_exit_2_with_file_and_line(repo):
    path = repo.path / "matrix" / "gate.yaml"
    path.write_text(path.read_text().replace("require: [slow]", "require: [slwo]"))
    done = repo.gate("--plan")
    assert done.returncode == 2
    assert f"matrix/gate.yaml:{_line_of(path, 'slwo')}: unknown check 'slwo' (did you mean 'slow'?)" in done.stderr
    assert "Traceback" not in done.stderr


def _line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_json_without_plan_is_a_usage_error(repo):
    done = repo.gate("--json")
    assert done.returncode == 2 and "--json goes with --plan" in done.stderr


def test_outside_a_repository(tmp_path):
    done = run_ccvm("gate", "--plan", cwd=tmp_path, env=isolated_git_env(), timeout=120)
    assert done.returncode == 2 and "not inside a git work tree" in done.stderr


# --- the pre-push hook --------------------------------------------------------------------------------------------


def test_install_hook_writes_an_executable_hook_once(repo):
    first = repo.gate("--install-hook")
    assert first.returncode == 0, first.stderr
    hook = repo.path / ".git" / "hooks" / "pre-push"
    assert hook.stat().st_mode & 0o111
    assert f"{sys.executable} -m ccvm gate" in hook.read_text()
    again = repo.gate("--install-hook")
    assert again.returncode == 0 and "already installed" in again.stdout


def test_install_hook_refuses_a_different_hook_without_force(repo):
    hook = repo.path / ".git" / "hooks" / "pre-push"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text("#!/bin/sh\necho mine\n")
    refused = repo.gate("--install-hook")
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert hook.read_text() == "#!/bin/sh\necho mine\n"
    forced = repo.gate("--install-hook", "--force")
    assert forced.returncode == 0
    assert "ccvm-gate-hook" in hook.read_text()
    assert (hook.parent / "pre-push.before-ccvm").read_text() == "#!/bin/sh\necho mine\n"


def test_install_hook_follows_core_hooks_path(repo):
    repo.git("config", "core.hooksPath", "githooks")
    assert repo.gate("--install-hook").returncode == 0
    assert (repo.path / "githooks" / "pre-push").is_file()


def test_the_hook_blocks_a_push_the_gate_fails_and_lets_a_passing_one_through(repo, tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], env=isolated_git_env(), check=True, timeout=60)
    repo.git("remote", "add", "origin", str(remote))
    repo.git("push", "-q", "origin", "main")
    assert repo.gate("--install-hook").returncode == 0
    repo.write("src/app.py", "A = 2\n")
    repo.commit("feature work")

    blocked = repo.run_git_push(GATE_FAIL="tests")
    assert blocked.returncode != 0
    assert "  tests: nox -s tests" in blocked.stdout + blocked.stderr
    assert "feature" not in repo.git("ls-remote", "--heads", "origin")

    pushed = repo.run_git_push()
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "refs/heads/feature" in repo.git("ls-remote", "--heads", "origin")


def _run_git_push(self: GateRepo, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "push", "origin", "feature"],
        cwd=self.path,
        capture_output=True,
        text=True,
        env={**isolated_git_env(), "GATE_MARKS": str(self.marks), **env},
        timeout=300,
    )


GateRepo.run_git_push = _run_git_push  # type: ignore[attr-defined]


def test_requirement_is_frozen():
    requirement = Requirement(name="x", check=None, because=(), reproduce="")
    with pytest.raises(AttributeError):
        requirement.name = "y"  # type: ignore[misc]


def test_plan_text_shows_each_requirement_and_the_attestation_state(repo):
    repo.write("src/console.py", "TERM = 2\n")
    before = repo.gate("--plan").stdout
    assert "[ ] lint" in before and "runs: sh tools/check.sh lint" in before
    assert "[?] tty-attestation" in before and "because: src/console.py" in before
    assert repo.ccvm("attest", "tty", "--note", "checked").returncode == 0
    assert "[x] tty-attestation      attested by Ada Tester" in repo.gate("--plan").stdout


def test_every_path_in_ccvm_s_own_gate_yaml_names_files_that_exist(project_root):
    """A rule about a file that moved away never fires: each glob must match a tracked file
    (flake.lock is the one exception: it cannot be made here, and the rule must catch it once it is)."""
    from ccvm.git import git_output
    from ccvm.matrix.model import load_matrix

    tracked = git_output(project_root, "ls-files", "--cached", "--others", "--exclude-standard").splitlines()
    rules = load_matrix(project_root / "matrix").gate
    globs = [glob for rule in rules.rules for glob in rule.paths] + list(rules.terminal)
    stale = [g.text for g in globs if g.text != "flake.lock" and not any(g.matches(path) for path in tracked)]
    assert stale == []


def test_junit_verdict_counts_a_file_the_baseline_knows_as_run(tmp_path):
    """Adoption keeps a green project green: a file skipped because every finding is known ran."""
    known = '<testcase name="quickemu"><skipped type="baseline" message="known: 3 finding(s)"/></testcase>'
    assert junit_verdict(_junit(tmp_path, known + '<testcase name="b"/>')) == (Status.PASS, "")
    other = '<testcase name="c"><skipped message="shfmt not found"/></testcase>'
    assert junit_verdict(_junit(tmp_path, known + other)) == (Status.SKIP, "c skipped: shfmt not found")
