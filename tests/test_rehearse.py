"""ccvm rehearse: the expression evaluator, step planning and matrix choice,
and real rehearsals of small workflows in temporary git repositories (real
git, real bash; the `uses:` steps are the rehearsal's own emulations)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from clirun import run_ccvm
from gitrepo import GitRepo

from ccvm.ci.expressions import Context, Status, Unevaluable, condition, evaluate, substitute
from ccvm.ci.rehearse import SHELL, matrix_entries, pick_cell, plan_steps
from ccvm.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent


def ctx(failed: bool = False, **contexts) -> Context:
    return Context(contexts={"matrix": {}, "env": {}, **contexts}, status=Status(failed=failed))


# -- expressions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("matrix.accel == 'kvm'", True),
        ("matrix.accel == 'KVM'", True),  # strings compare without case
        ("matrix.accel != 'kvm'", False),
        ("matrix.missing", None),
        ("matrix.missing == ''", True),  # null and '' are both 0 as numbers
        ("1 < 2 && 'a'", "a"),  # && gives the operand back
        ("0 || 'b'", "b"),
        ("!matrix.kvm", False),
        ("(1 == 1) && !(2 == 3)", True),
        ("env['NAME']", "v"),
        ("contains('hello world', 'WORLD')", True),
        ("startsWith(matrix.accel, 'kv')", True),
        ("format('{0}-{1}', 'a', 3)", "a-3"),
        ("github.event_name == 'pull_request' && github.sha || 'push'", "push"),
        ("'it''s'", "it's"),
        ("0x10 == 16", True),
    ],
)
def test_expression_values(text, value):
    context = ctx(matrix={"accel": "kvm", "kvm": True}, env={"NAME": "v"}, github={"event_name": "push", "sha": "s"})
    assert evaluate(text, context) == value


def test_status_functions_and_the_implicit_success():
    assert condition("always()", ctx(failed=True)) is True
    assert condition("failure()", ctx(failed=True)) is True
    assert condition("success()", ctx(failed=True)) is False
    assert condition("${{ !cancelled() }}", ctx(failed=True)) is True
    assert condition("true", ctx(failed=True)) is False  # no status function: success() && (true)
    assert condition(None, ctx()) is True and condition(None, ctx(failed=True)) is False


def test_short_circuit_skips_what_it_cannot_evaluate():
    assert evaluate("false && needs.build.result", ctx()) is False


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("toJSON(needs)", "the 'needs' context is not known"),
        ("secrets.TOKEN", "the 'secrets' context is not known"),
        ("frobnicate(1)", "the function frobnicate() is not known"),
        ("matrix.a ==", "expected more"),
        ("matrix.a = 'b'", "cannot read"),
    ],
)
def test_what_it_cannot_evaluate_is_reported(text, words):
    with pytest.raises(Unevaluable) as caught:
        evaluate(text, ctx())
    assert words in str(caught.value)


def test_substitute_fills_every_expression():
    context = ctx(matrix={"cell": "x86_64-tcg-q35"})
    assert substitute("boot ${{ matrix.cell }} (${{ 1 == 1 }})", context) == "boot x86_64-tcg-q35 (true)"


# -- planning ----------------------------------------------------------------------------


def test_matrix_include_list_and_product_with_exclude():
    include = {"strategy": {"matrix": {"include": [{"cell": "a"}, {"cell": "b"}]}}}
    assert matrix_entries(include) == [{"cell": "a"}, {"cell": "b"}]
    product = {"strategy": {"matrix": {"os": ["x", "y"], "py": [1, 2], "exclude": [{"os": "y", "py": 2}]}}}
    assert matrix_entries(product) == [{"os": "x", "py": 1}, {"os": "x", "py": 2}, {"os": "y", "py": 1}]
    assert matrix_entries({}) == [{}]


def test_pick_cell_by_name_and_errors_list_the_cells():
    entries = [{"cell": "a", "arch": "x"}, {"cell": "b", "arch": "y"}]
    assert pick_cell(entries, "b", "boot") == entries[1]
    with pytest.raises(UsageError, match="pick one with --cell: a, b"):
        pick_cell(entries, None, "boot")
    with pytest.raises(UsageError, match="--cell c: not a cell of job boot; cells: a, b"):
        pick_cell(entries, "c", "boot")
    assert pick_cell([{}], None, "host") == {}


def test_plan_steps_names_each_step_and_refuses_ambiguous_ones():
    steps = plan_steps({"steps": [{"run": "echo hi\necho there"}, {"uses": "actions/checkout@x", "name": "Out"}]})
    assert [(s.number, s.name, s.kind) for s in steps] == [(1, "Run echo hi", "run"), (2, "Out", "uses")]
    with pytest.raises(UsageError, match="exactly one of run: and uses:"):
        plan_steps({"steps": [{"run": "a", "uses": "b"}]})


def test_the_shell_is_githubs_default():
    assert SHELL == ("bash", "--noprofile", "--norc", "-eo", "pipefail")


# -- real rehearsals ---------------------------------------------------------------------

WORKFLOW = """\
name: fixture
on: push
env:
  GREETING: hello
jobs:
  small:
    runs-on: ubuntu-24.04
    timeout-minutes: 2
    strategy:
      matrix:
        include:
          - {cell: one, colour: red}
          - {cell: two, colour: blue}
    env:
      COLOUR: ${{ matrix.colour }}
    steps:
      - uses: actions/checkout@0000000000000000000000000000000000000000 # v6
      - name: Write env, output, path and summary
        id: first
        run: |
          echo "FROM_STEP=carried" >> "$GITHUB_ENV"
          echo "answer=42" >> "$GITHUB_OUTPUT"
          mkdir -p "$RUNNER_TEMP/bin" && printf '#!/bin/sh\\necho tool-ran\\n' > "$RUNNER_TEMP/bin/mytool"
          chmod +x "$RUNNER_TEMP/bin/mytool" && echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"
          echo "### $GREETING $COLOUR" >> "$GITHUB_STEP_SUMMARY"
      - name: Read them back
        env:
          ANSWER: ${{ steps.first.outputs.answer }}
        run: |
          test "$FROM_STEP" = carried && test "$ANSWER" = 42 && test "$(mytool)" = tool-ran
          test -f tracked.txt && test "$CI" = true
          echo "pipefail is on" && ! (false | true)
      - name: Only on blue
        if: matrix.colour == 'blue'
        run: echo blue > blue.txt
      - name: An action nobody emulates
        uses: someone/unknown-action@0000000000000000000000000000000000000000 # v1
      - name: Upload
        uses: actions/upload-artifact@0000000000000000000000000000000000000000 # v6
        with:
          name: out-${{ matrix.cell }}
          path: tracked.txt
      - name: Maybe fail
        run: test -z "$FAIL_HERE"
      - name: After a failure
        if: failure()
        run: echo "cleanup ran" >> "$GITHUB_STEP_SUMMARY"
      - name: Not after a failure
        run: echo "should not run when failing"
"""


@pytest.fixture
def repo(tmp_path, isolated_git):
    return GitRepo.create(
        tmp_path / "project",
        files={".github/workflows/ci.yml": WORKFLOW, "tracked.txt": "committed\n"},
    )


def rehearse(repo: GitRepo, tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_ccvm(
        "rehearse",
        "--root",
        str(repo.path),
        "--dir",
        str(tmp_path / "r"),
        *args,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_a_small_job_passes_with_env_outputs_path_summary_and_conditions(repo, tmp_path):
    done = rehearse(repo, tmp_path, "small", "--cell", "two")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "<== success" in out and "<== failure" not in out
    assert "someone/unknown-action@0000000000000000000000000000000000000000: not an action a rehearsal knows" in out
    assert "--- step summary ---\n### hello blue" in out
    assert "rehearse small: 7 passed, 0 failed, 2 skipped" in out
    assert (tmp_path / "r" / "artifacts" / "out-two" / "tracked.txt").read_text() == "committed\n"


def test_if_on_a_matrix_value_skips_the_step(repo, tmp_path):
    done = rehearse(repo, tmp_path, "small", "--cell", "one")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[lines.index("==> [4/9] Only on blue") + 1] == "<== skipped (0.0s): if: false"


def test_a_failing_step_fails_the_job_runs_failure_steps_and_skips_the_rest(repo, tmp_path):
    done = rehearse(repo, tmp_path, "small", "--cell", "one", env={"FAIL_HERE": "1"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cleanup ran" in done.stdout
    lines = done.stdout.splitlines()
    assert lines[lines.index("==> [9/9] Not after a failure") + 1] == "<== skipped (0.0s): if: false"
    assert "ccvm: error: job small failed at [7] Maybe fail" in done.stderr


def test_the_clone_is_of_head_without_uncommitted_changes(repo, tmp_path):
    (repo.path / "tracked.txt").write_text("edited, not committed\n")
    done = rehearse(repo, tmp_path, "small", "--cell", "two")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "uncommitted changes" in done.stdout
    assert (tmp_path / "r" / "artifacts" / "out-two" / "tracked.txt").read_text() == "committed\n"


def test_a_step_past_the_jobs_timeout_is_killed(repo, tmp_path):
    slow = WORKFLOW.replace("timeout-minutes: 2", "timeout-minutes: 0.05").replace(
        'run: test -z "$FAIL_HERE"', "run: sleep 60"
    )
    repo.write(".github/workflows/ci.yml", slow)
    repo.commit("slow")
    done = rehearse(repo, tmp_path, "small", "--cell", "two")
    assert done.returncode == 1
    assert "timed out after" in done.stdout or "ran out before this step" in done.stdout


def test_an_expression_it_cannot_evaluate_fails_the_step_with_the_reason(repo, tmp_path):
    repo.write(".github/workflows/ci.yml", WORKFLOW.replace("if: matrix.colour == 'blue'", "if: needs.a.result"))
    repo.commit("needs")
    done = rehearse(repo, tmp_path, "small", "--cell", "two")
    assert done.returncode == 1
    assert "cannot evaluate: 'success() && (needs.a.result)': the 'needs' context is not known" in done.stdout


def test_unknown_job_and_cell_are_one_line_usage_errors(repo, tmp_path):
    done = rehearse(repo, tmp_path, "nope")
    assert done.returncode == 2 and "no job 'nope'; jobs: small" in done.stderr
    done = rehearse(repo, tmp_path, "small")
    assert done.returncode == 2 and "pick one with --cell: one, two" in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_temporary_rehearsal_leaves_nothing_behind_unless_kept(repo, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    args = ("rehearse", "--root", str(repo.path), "small", "--cell", "two")
    done = run_ccvm(*args, cwd=ROOT, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rehearsal directory removed (--keep keeps it)" in done.stdout
    assert not [p for p in scratch.iterdir() if p.name.startswith("ccvm-rehearse-")]
    kept = run_ccvm(*args, "--keep", cwd=ROOT, timeout=120, env=env)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    (directory,) = [p for p in scratch.iterdir() if p.name.startswith("ccvm-rehearse-")]
    assert (directory / "artifacts" / "out-two" / "tracked.txt").is_file()
