"""ccvm generate: rendering, the drift check and bad input.  Everything runs
the real generator on real templates; trees under tmp_path stand in for
the project so the tests never write into the working copy."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from clirun import run_ccvm

from ccvm.ci.generate import (
    HEADER,
    find_drift,
    flake_checks,
    generated_on_disk,
    output_path,
    render_all,
    template_context,
)
from ccvm.cli import main
from ccvm.errors import ConfigError
from ccvm.matrix.builds import Builds, BuildTarget
from ccvm.matrix.model import load_matrix

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "generate"
NOX = Path(sys.executable).parent / "nox"

X86_ONLY = """\
cells:
  - arch: x86_64
    accel: [kvm, tcg]
    machine: q35
"""


def make_tree(tmp_path: Path, boot_yaml: str | None = None) -> tuple[Path, Path]:
    """A matrix dir and a project root holding a copy of the templates (and the noxfile)."""
    matrix = tmp_path / "matrix"
    shutil.copytree(ROOT / "matrix", matrix)
    if boot_yaml is not None:
        (matrix / "boot.yaml").write_text(boot_yaml)
    root = tmp_path / "project"
    for template in (ROOT / "ci").rglob("*.j2"):
        target = root / "ci" / template.relative_to(ROOT / "ci")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(template, target)
    shutil.copy(ROOT / "noxfile.py", root / "noxfile.py")
    return matrix, root


def ccvm(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def generate(capsys, matrix: Path, root: Path, *extra: str) -> tuple[int, str, str]:
    return ccvm(capsys, "--matrix", str(matrix), "generate", "--root", str(root), *extra)


# -- the committed files ----------------------------------------------------


def test_committed_generated_files_are_current(capsys):
    status, out, err = ccvm(capsys, "--matrix", str(ROOT / "matrix"), "generate", "--check", "--root", str(ROOT))
    assert status == 0, out + err
    assert "up to date" in out


def test_outputs_go_where_flake_and_github_read_them():
    outputs = render_all(load_matrix(ROOT / "matrix"), ROOT / "ci")
    assert sorted(o.path for o in outputs) == [".github/workflows/ci.yml", "ci/flake-checks.json"]
    assert output_path("workflows/nightly.yml.j2") == ".github/workflows/nightly.yml"
    assert output_path("other.json.j2") == "ci/other.json"
    with pytest.raises(ValueError, match="ci/ or ci/workflows/"):
        output_path("deep/er/x.yml.j2")


def test_rendering_is_deterministic():
    matrix = load_matrix(ROOT / "matrix")
    assert render_all(matrix, ROOT / "ci") == render_all(load_matrix(ROOT / "matrix"), ROOT / "ci")


def test_every_output_starts_with_the_do_not_edit_header():
    for output in render_all(load_matrix(ROOT / "matrix"), ROOT / "ci"):
        if output.path.endswith(".json"):
            assert json.loads(output.text)["generated"] == "by ccvm generate, do not edit"
        else:
            assert output.text.splitlines()[0].lower().startswith(f"# {HEADER}")


# -- ci/flake-checks.json ---------------------------------------------------


def test_flake_checks_json_has_the_agreed_shape():
    doc = json.loads((ROOT / "ci" / "flake-checks.json").read_text())
    assert list(doc) == ["generated", "checks"]
    assert doc["generated"] == "by ccvm generate, do not edit"
    for check in doc["checks"]:
        assert list(check) == ["name", "system", "command", "features"]
    boot = {check["name"]: check for check in doc["checks"] if check["name"].startswith("boot-")}
    assert boot["boot-x86_64-tcg-q35"] == {
        "name": "boot-x86_64-tcg-q35",
        "system": "x86_64-linux",
        "command": ["ccvm", "boot", "--cell", "x86_64-tcg-q35"],
        "features": [],
    }
    assert boot["boot-x86_64-kvm-q35"]["features"] == ["kvm"]
    # without --require-accel a builder whose KVM probe fails would skip the cell and pass the derivation
    assert boot["boot-x86_64-kvm-q35"]["command"] == [
        "ccvm",
        "boot",
        "--cell",
        "x86_64-kvm-q35",
        "--require-accel",
        "kvm",
    ]
    assert boot["boot-aarch64-kvm-virt"]["command"][-2:] == ["--require-accel", "kvm"]
    assert boot["boot-aarch64-kvm-virt"]["system"] == "aarch64-linux"
    assert boot["boot-aarch64-kvm-virt"]["features"] == ["kvm"]
    assert all(check["name"].startswith("boot-") for check in doc["checks"])


def test_flake_boot_checks_follow_matrix_order():
    matrix = load_matrix(ROOT / "matrix")
    names = [check["name"] for check in flake_checks(matrix) if check["name"].startswith("boot-")]
    assert names == [f"boot-{cell.id}" for cell in matrix.cells]


# -- the drift check --------------------------------------------------------


def test_adding_a_cell_changes_workflow_flake_checks_and_nox_sessions_together(tmp_path):
    """Done means: after a matrix edit the drift check fails with a diff until `ccvm generate` runs."""
    matrix, root = make_tree(tmp_path, X86_ONLY)
    cli = ("--matrix", str(matrix), "generate", "--root", str(root))
    assert run_ccvm(*cli).returncode == 0
    assert run_ccvm(*cli, "--check").returncode == 0

    (matrix / "boot.yaml").write_text(X86_ONLY + "  - {arch: aarch64, accel: tcg, machine: virt}\n")
    stale = run_ccvm(*cli, "--check")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "--- a/.github/workflows/ci.yml" in stale.stdout and "+++ b/.github/workflows/ci.yml" in stale.stdout
    assert "+          - cell: aarch64-tcg-virt" in stale.stdout
    assert "+            runner: ubuntu-24.04-arm" in stale.stdout
    assert '+      "name": "boot-aarch64-tcg-virt",' in stale.stdout
    assert "stale: .github/workflows/ci.yml, ci/flake-checks.json" in stale.stderr
    assert "run `ccvm generate`" in stale.stderr

    assert run_ccvm(*cli).returncode == 0
    assert run_ccvm(*cli, "--check").returncode == 0
    listed = subprocess.run(
        [str(NOX), "-f", str(root / "noxfile.py"), "--list", "--json", "-s", "boot_cell"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert [s["session"] for s in json.loads(listed.stdout)] == [
        "boot_cell(x86_64-kvm-q35)",
        "boot_cell(x86_64-tcg-q35)",
        "boot_cell(aarch64-tcg-virt)",
    ]


def test_missing_output_is_drift_with_a_diff_from_dev_null(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    assert generate(capsys, matrix, root)[0] == 0
    (root / "ci" / "flake-checks.json").unlink()
    status, out, err = generate(capsys, matrix, root, "--check")
    assert status == 1
    assert "--- /dev/null\n+++ b/ci/flake-checks.json" in out
    assert "missing: ci/flake-checks.json" in err


def test_extra_generated_workflow_is_drift_and_generate_removes_it(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    assert generate(capsys, matrix, root)[0] == 0
    leftover = root / ".github" / "workflows" / "old.yml"
    leftover.write_text(f"# {HEADER}\nname: old\non: push\njobs: {{}}\n")
    shutil.copy(FIXTURES / "hand-written.yml", root / ".github" / "workflows" / "release.yml")

    status, out, err = generate(capsys, matrix, root, "--check")
    assert status == 1
    assert "--- a/.github/workflows/old.yml\n+++ /dev/null" in out
    assert "extra: .github/workflows/old.yml" in err
    assert "release.yml" not in out + err  # hand-written: not ours

    status, out, _ = generate(capsys, matrix, root)
    assert status == 0 and "removed .github/workflows/old.yml (extra)" in out
    assert not leftover.exists()
    assert (root / ".github" / "workflows" / "release.yml").exists()
    assert generate(capsys, matrix, root, "--check")[0] == 0


def test_extra_generated_json_is_found_too(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    assert generate(capsys, matrix, root)[0] == 0
    (root / "ci" / "old-checks.json").write_text(json.dumps({"generated": "by ccvm generate, do not edit"}))
    (root / "ci" / "notes.json").write_text(json.dumps({"generated": "by hand"}))
    assert generated_on_disk(root) == {".github/workflows/ci.yml", "ci/flake-checks.json", "ci/old-checks.json"}


def test_hand_edit_of_a_generated_file_is_stale(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    assert generate(capsys, matrix, root)[0] == 0
    workflow = root / ".github" / "workflows" / "ci.yml"
    workflow.write_text(workflow.read_text().replace("timeout-minutes: 20", "timeout-minutes: 25", 1))
    status, out, err = generate(capsys, matrix, root, "--check")
    assert status == 1
    assert "-    timeout-minutes: 25\n+    timeout-minutes: 20" in out
    assert "stale: .github/workflows/ci.yml" in err
    drift = find_drift(root, render_all(load_matrix(matrix), root / "ci"))
    assert [(d.path, str(d.kind)) for d in drift] == [(".github/workflows/ci.yml", "stale")]


def test_generate_into_an_empty_tree_then_nothing_to_do(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    status, out, _ = generate(capsys, matrix, root)
    assert status == 0
    assert "wrote .github/workflows/ci.yml (missing)" in out and "wrote ci/flake-checks.json (missing)" in out
    status, out, _ = generate(capsys, matrix, root)
    assert status == 0 and "up to date" in out


def test_matrix_defaults_to_root_matrix(tmp_path, capsys, monkeypatch):
    matrix, root = make_tree(tmp_path, X86_ONLY)
    shutil.copytree(matrix, root / "matrix")
    monkeypatch.delenv("CCVM_MATRIX", raising=False)
    status, _, err = ccvm(capsys, "generate", "--root", str(root))
    assert status == 0, err
    assert "aarch64" not in (root / "ci" / "flake-checks.json").read_text()


# -- bad input: one line, file:line, exit 2 ---------------------------------


@pytest.mark.parametrize(
    ("fixture", "line", "words"),
    [
        ("actions-no-tag.yaml", 3, "put the release tag in a comment"),
        ("actions-short-sha.yaml", 3, "full 40-digit lowercase commit SHA"),
    ],
)
def test_bad_actions_yaml_names_file_and_line(tmp_path, capsys, fixture, line, words):
    matrix, root = make_tree(tmp_path)
    shutil.copy(FIXTURES / fixture, matrix / "actions.yaml")
    status, out, err = generate(capsys, matrix, root)
    assert status == 2
    assert err.startswith(f"ccvm: error: {matrix / 'actions.yaml'}:{line}: ") and words in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_action_pinned_twice_is_refused(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    text = (matrix / "actions.yaml").read_text()
    line = next(line for line in text.splitlines() if "actions/checkout@" in line)
    (matrix / "actions.yaml").write_text(text.replace(line, f"{line}\n{line}"))
    status, _, err = generate(capsys, matrix, root)
    assert status == 2 and "actions/checkout is pinned twice; keep one" in err


def test_runner_missing_for_an_arch(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    text = (matrix / "actions.yaml").read_text().replace("  aarch64: ubuntu-24.04-arm\n", "")
    (matrix / "actions.yaml").write_text(text)
    status, _, err = generate(capsys, matrix, root)
    assert status == 2 and "missing: aarch64" in err


@pytest.mark.parametrize(
    ("fixture", "words"),
    [
        ("unpinned.yml.j2", ":8: template error: action 'actions/setup-node' is not pinned in matrix/actions.yaml"),
        ("undefined.yml.j2", ":6: template error: 'runner_for_everything' is undefined"),
        ("no-header.yml.j2", ": the output must carry the header"),
    ],
)
def test_template_mistakes_name_the_template(tmp_path, capsys, fixture, words):
    matrix, root = make_tree(tmp_path)
    shutil.copy(FIXTURES / fixture, root / "ci" / "workflows" / fixture)
    status, _, err = generate(capsys, matrix, root)
    assert status == 2
    assert err.startswith(f"ccvm: error: {root / 'ci' / 'workflows' / fixture}{words}")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (root / ".github").exists()  # nothing written when any template fails


def test_template_syntax_error_names_the_line(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    (root / "ci" / "workflows" / "broken.yml.j2").write_text("# [[ header ]]\nname: x\n[% if %]\n")
    status, _, err = generate(capsys, matrix, root)
    assert status == 2 and f"{root / 'ci' / 'workflows' / 'broken.yml.j2'}:3: template error" in err


def test_template_rendering_invalid_yaml_is_refused(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    (root / "ci" / "workflows" / "bad.yml.j2").write_text("# [[ header ]]\nname: [unclosed\n")
    status, _, err = generate(capsys, matrix, root)
    assert status == 2 and "renders to invalid YAML for .github/workflows/bad.yml" in err


def test_no_templates_directory(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    status, _, err = generate(capsys, matrix, root, "--templates", str(tmp_path / "nowhere"))
    assert status == 2 and "templates directory not found" in err


ADOPTED_PIP = 'ccvm_pip: "ccvm @ git+https://example.invalid/ccvm.git@0123456789abcdef0123456789abcdef01234567"\n'


def adopted_tree(tmp_path: Path, extra: str = "") -> Path:
    """ccvm's matrix plus what an adopted project declares in actions.yaml (where ccvm comes from)."""
    matrix, _ = make_tree(tmp_path)
    with (matrix / "actions.yaml").open("a") as actions:
        actions.write(ADOPTED_PIP + extra)
    return matrix


def test_a_project_without_templates_gets_the_package_defaults(tmp_path, capsys):
    """A user project (no ci/*.j2) renders ccvm's own default workflow, .github/workflows/ccvm.yml."""
    matrix = adopted_tree(tmp_path)
    root = tmp_path / "user"
    (root / "ci").mkdir(parents=True)
    (root / "ci" / "notes.txt").write_text("a ci/ directory of the project's own, with no templates\n")
    status, out, err = generate(capsys, matrix, root)
    assert status == 0, err
    assert out.strip() == "wrote .github/workflows/ccvm.yml (missing)"
    doc = yaml.safe_load((root / ".github" / "workflows" / "ccvm.yml").read_text())
    checks = {entry["check"]: entry["command"] for entry in doc["jobs"]["checks"]["strategy"]["matrix"]["include"]}
    assert checks["docs"] == "ccvm docs" and not any(name.startswith("boot-") for name in checks)
    assert [e["cell"] for e in doc["jobs"]["boot"]["strategy"]["matrix"]["include"]] == [
        c.id for c in load_matrix(matrix).cells
    ]
    assert generate(capsys, matrix, root, "--check")[0] == 0


def test_a_hand_written_file_where_an_output_goes_is_never_overwritten(tmp_path, capsys):
    matrix = adopted_tree(tmp_path)
    root = tmp_path / "user"
    workflow = root / ".github" / "workflows" / "ccvm.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("name: mine\n")
    status, _, err = generate(capsys, matrix, root)
    assert status == 2 and "ccvm never overwrites it" in err
    assert "set `workflow: NAME` in matrix/actions.yaml" in err  # the package template: no template to rename
    assert workflow.read_text() == "name: mine\n"
    status, out, err = generate(capsys, matrix, root, "--check")
    assert status == 1 and "hand-written: .github/workflows/ccvm.yml" in err and "never overwrites" in out


def test_the_adopted_workflow_is_named_by_matrix_actions_workflow(tmp_path, capsys):
    matrix = adopted_tree(tmp_path, 'workflow: "ccvm-ci"\n')
    root = tmp_path / "user"
    status, out, err = generate(capsys, matrix, root)
    assert status == 0 and out.strip() == "wrote .github/workflows/ccvm-ci.yml (missing)", err
    assert not (root / ".github" / "workflows" / "ccvm.yml").exists()


def test_the_package_template_needs_ccvm_pip_and_says_where(tmp_path, capsys):
    matrix, _ = make_tree(tmp_path)  # ccvm's own actions.yaml: ccvm's CI installs ccvm from its checkout
    status, _, err = generate(capsys, matrix, tmp_path / "user")
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{matrix / 'actions.yaml'}: ccvm_pip is not set" in err and "Traceback" not in err


def test_only_a_header_in_a_comment_makes_a_file_generated(tmp_path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "mine.yml").write_text(f"name: mine\ndescription: {HEADER!r} is what ccvm writes\n")
    (workflows / "ours.yml").write_text(f"# {HEADER}\nname: ours\n")
    assert generated_on_disk(tmp_path) == {".github/workflows/ours.yml"}


def test_generated_workflow_parses_as_yaml():
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert set(doc["jobs"]) == {"lint", "host", "build", "flake-check", "boot", "docs", "tests", "report", "all-green"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"# [[ header ]]\nname: x\nvalue: [[ 1/0 ]]\n", ":3: template error: ZeroDivisionError: division by zero"),
        (b"# [[ header ]]\nname: \xff\xfe\n", ": template error: UnicodeDecodeError: "),
    ],
)
def test_template_errors_that_are_not_jinja_errors_name_the_template(tmp_path, capsys, body, words):
    matrix, root = make_tree(tmp_path)
    (root / "ci" / "workflows" / "odd.yml.j2").write_bytes(body)
    status, _, err = generate(capsys, matrix, root)
    assert status == 2
    assert err.startswith(f"ccvm: error: {root / 'ci' / 'workflows' / 'odd.yml.j2'}{words}")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_crlf_line_ends_in_a_generated_file_are_drift(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    assert generate(capsys, matrix, root)[0] == 0
    workflow = root / ".github" / "workflows" / "ci.yml"
    workflow.write_bytes(workflow.read_bytes().replace(b"\n", b"\r\n"))
    status, _, err = generate(capsys, matrix, root, "--check")
    assert status == 1 and "stale: .github/workflows/ci.yml" in err
    assert generate(capsys, matrix, root)[0] == 0
    assert b"\r" not in workflow.read_bytes()


@pytest.mark.parametrize(
    ("builds", "words"),
    [
        (Builds(timeout_s=math.inf, targets=(BuildTarget(attr="a", system="x86_64-linux"),)), "would need infs"),
        (Builds(timeout_s=math.nan, targets=(BuildTarget(attr="a", system="x86_64-linux"),)), "would need nans"),
        (
            Builds(timeout_s=7 * 24 * 3600.0, targets=tuple(BuildTarget(attr=a, system="x86_64-linux") for a in "ab")),
            "would need 1.2096e+06s",
        ),
    ],
)
def test_job_minutes_are_never_infinite_or_absurd(builds, words):
    matrix = dataclasses.replace(load_matrix(ROOT / "matrix"), builds=builds)
    with pytest.raises(ConfigError) as caught:
        template_context(matrix)
    assert str(caught.value).startswith(f"{ROOT / 'matrix' / 'builds.yaml'}: a build job") and words in str(
        caught.value
    )


@pytest.mark.parametrize("value", [".inf", ".nan", "1e300"])
def test_non_finite_or_huge_builds_timeout_is_refused_before_rendering(tmp_path, capsys, value):
    matrix, root = make_tree(tmp_path)
    text = (matrix / "builds.yaml").read_text()
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("timeout:"))
    (matrix / "builds.yaml").write_text(re.sub(r"(?m)^timeout: \d+", f"timeout: {value}", text))
    status, _, err = generate(capsys, matrix, root)
    assert status == 2 and f"{matrix / 'builds.yaml'}:{line}: timeout must be a positive number" in err
    assert len(err.strip().splitlines()) == 1 and not (root / ".github").exists()


def test_python_version_must_be_a_quoted_string(tmp_path, capsys):
    matrix, root = make_tree(tmp_path)
    text = (matrix / "actions.yaml").read_text()
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("python:"))
    lines[index] = "python: 3.10"
    (matrix / "actions.yaml").write_text("\n".join(lines) + "\n")
    status, _, err = generate(capsys, matrix, root)
    assert status == 2
    assert err.startswith(f"ccvm: error: {matrix / 'actions.yaml'}:{index + 1}: ")
    assert "python must be a quoted version string" in err and "3.1" in err


@pytest.mark.parametrize("value", [".inf", ".nan", "1e300"])
def test_non_finite_or_huge_boot_timeout_is_refused_before_rendering(tmp_path, capsys, value):
    matrix, root = make_tree(tmp_path)
    text = (matrix / "boot.yaml").read_text()
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("  timeout:"))
    (matrix / "boot.yaml").write_text(re.sub(r"(?m)^  timeout: \d+", f"  timeout: {value}", text))
    status, _, err = generate(capsys, matrix, root)
    assert status == 2 and f"{matrix / 'boot.yaml'}:{line}: " in err and "at most 604800 (7 days)" in err
    assert len(err.strip().splitlines()) == 1 and not (root / ".github").exists()
