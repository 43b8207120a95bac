"""ccvm init on a seed-style project (tests/fixtures/adopt/seed-project):
copied into a throwaway git repository, adopted, then every command a new
user runs next, each a real `python -m ccvm` in that repository.  The
project's own files must come out byte for byte as they went in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox.registry
import pytest
import yaml
from clirun import run_ccvm
from gitrepo import GitRepo, isolated_git_env
from nixtest import FLAKES, offline_env
from workflowlint import schema_check, zizmor

from ccvm.adopt.flake import read_flake, read_text
from ccvm.matrix.model import load_matrix

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "fixtures" / "adopt" / "seed-project"
BIN = Path(sys.executable).parent
ADDED = {"matrix/actions.yaml", "matrix/boot.yaml", "matrix/builds.yaml", "matrix/gate.yaml"}
ADDED |= {"matrix/guest.yaml", "matrix/style.yaml", "noxfile.py", ".github/workflows/ccvm.yml"}
WITH_BOOK = ADDED | {"matrix/docs.yaml"}  # where init finds an mdBook
BOOT_STEP = "Boot (ccvm boot --cell ... [--require kvm | --allow-missing kvm])"


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def seed_repo(tmp_path: Path) -> Path:
    repo = GitRepo.create(tmp_path / "seed", files={})
    shutil.copytree(SEED, repo.path, dirs_exist_ok=True)
    repo.commit("seed project")
    return repo.path


def ccvm(repo: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**isolated_git_env(), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env = {key: value for key, value in env.items() if not key.startswith("CCVM_")}
    return run_ccvm(*args, cwd=repo, env=env, timeout=timeout)


def test_init_then_every_next_command_is_clean_and_the_project_is_untouched(tmp_path):
    repo = seed_repo(tmp_path)
    before = snapshot(repo)
    init = ccvm(repo, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert {f"wrote {path}" for path in WITH_BOOK} <= set(init.stdout.splitlines())
    assert "guessed: the flake's systems, checks and packages were read from flake.nix's text" in init.stdout
    assert "shfmt: -i 2 -s -ci (treefmt.toml:2 [formatter.shfmt])" in init.stdout
    for args in (["matrix", "--no-probe"], ["generate", "--check"], ["gate", "--plan"], ["fmt"], ["docs"], ["lint"]):
        done = ccvm(repo, *args)
        assert done.returncode == 0, (args, done.stdout + done.stderr)
    after = snapshot(repo)
    assert {path: after[path] for path in before} == before  # the project's own files, byte for byte
    # Besides what init wrote: the checks' JUnit files, and ruff's cache (which git ignores by its own .gitignore).
    made = {path for path in after if not path.startswith(("reports/", ".ruff_cache/"))} - set(before)
    assert made == WITH_BOOK | {"matrix/launcher.yaml"}  # lib/wrapper.sh reads WRAPPER_DRYRUN: init declares it


def test_what_init_found_in_the_seed_project(tmp_path):
    repo = seed_repo(tmp_path)
    init = ccvm(repo, "init")
    assert init.returncode == 0, init.stderr
    matrix = load_matrix(repo / "matrix")
    assert [cell.id for cell in matrix.cells] == [
        "x86_64-kvm-q35",
        "x86_64-tcg-q35",
        "aarch64-kvm-virt",
        "aarch64-tcg-virt",
    ]
    assert {(t.attr, t.system) for t in matrix.builds.targets} >= {
        ("wrapper", "x86_64-linux"),
        ("docs", "aarch64-linux"),
    }
    checks = {check.name: check.run for check in matrix.gate.checks}
    # lib/wrapper.sh reads WRAPPER_DRYRUN and lib/wrapper.nix installs it as the flake package `wrapper`:
    # init declares ./result/bin/wrapper, built by the host check first; it declares no boot scenarios.
    launcher = matrix.declared_launcher
    assert launcher is not None and launcher.argv == ("./result/bin/wrapper",)
    assert launcher.dry_run.variable == "WRAPPER_DRYRUN" and launcher.host_scripts == ("tests/host.sh",)
    assert {(step.system, step.flake) for step in launcher.build} == {
        ("x86_64-linux", ".#wrapper"),
        ("aarch64-linux", ".#wrapper"),
    }
    assert checks["host"] == ("ccvm", "host", "--build", "--junit", "reports/junit/gate-host.xml")
    assert checks["docs"] == ("ccvm", "docs")
    assert "launcher: ./result/bin/wrapper (lib/wrapper.sh reads WRAPPER_DRYRUN)" in init.stdout
    assert "the launcher declares no boot scenarios: no boot checks" in init.stdout
    assert "flake-check" in checks and not any(name.startswith("boot-") for name in checks)
    assert matrix.style.shfmt_options == ("-i", "2", "-s", "-ci")
    assert matrix.guest == load_matrix(ROOT / "matrix").guest  # ccvm's own pinned guest packages
    plan = ccvm(repo, "gate", "--plan", "--json")
    assert {r["name"] for r in json.loads(plan.stdout)["requirements"]} >= {"drift", "host"}
    workflow = yaml.safe_load((repo / ".github" / "workflows" / "ccvm.yml").read_text())
    names = {entry["check"] for entry in workflow["jobs"]["checks"]["strategy"]["matrix"]["include"]}
    assert names == {"lint", "fmt", "drift", "docs", "host", "flake-check"}
    assert set(workflow["jobs"]) == {"checks"}  # no boot job: nothing of the project's own to boot


def test_init_twice_refuses_in_one_line_and_force_writes_again(tmp_path):
    repo = seed_repo(tmp_path)
    assert ccvm(repo, "init").returncode == 0
    boot = repo / "matrix" / "boot.yaml"
    boot.write_text(boot.read_text() + "# edited\n")  # still init's: its first line is init's header
    again = ccvm(repo, "init")
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert "--force" in again.stderr and "Traceback" not in again.stderr
    assert again.stdout == ""  # refused before Nix was asked anything (the seed has a flake.nix)
    assert boot.read_text().endswith("# edited\n")
    forced = ccvm(repo, "init", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "cells:" in boot.read_text() and not boot.read_text().endswith("# edited\n")
    assert "left alone: noxfile.py (up to date)" in forced.stdout  # generated: kept in step with gate.yaml
    assert ccvm(repo, "generate", "--check").returncode == 0
    # A matrix file whose header line is deleted is the project's own: --force keeps it byte for byte.
    mine = "".join(boot.read_text().splitlines(keepends=True)[1:]).replace("timeout: 120", "timeout: 99")
    boot.write_text(mine)
    kept = ccvm(repo, "init", "--force")
    assert kept.returncode == 0, kept.stderr
    assert boot.read_text() == mine and "left alone: matrix/boot.yaml (the project's own)" in kept.stdout


def test_a_hand_written_workflow_where_ccvms_goes_stops_init_before_it_writes(tmp_path):
    repo = seed_repo(tmp_path)
    mine = repo / ".github" / "workflows" / "ccvm.yml"
    mine.write_text("name: mine\n")
    (repo / "noxfile.py").write_text("# the project's own\n")
    done = ccvm(repo, "init")
    assert done.returncode == 2 and "ccvm never overwrites it" in done.stderr
    assert mine.read_text() == "name: mine\n" and not (repo / "matrix").exists()
    assert (repo / "noxfile.py").read_text() == "# the project's own\n"


def test_a_flake_nix_can_evaluate_offline_is_evaluated(tmp_path, monkeypatch, nix_bin):
    for key, value in offline_env().items():
        monkeypatch.setenv(key, value)
    project = tmp_path / "flake"
    shutil.copytree(FLAKES / "builds", project)
    facts = read_flake(project)
    assert facts is not None and facts.how == "nix flake show"
    assert facts.checks["x86_64-linux"] == ("greeting-says-hello",)
    assert set(facts.packages["aarch64-linux"]) == {"default", "greeting", "hello"}
    # nix names the packages only: that `default = greeting;` is read from the text beside it
    assert facts.default_is == {"x86_64-linux": "greeting", "aarch64-linux": "greeting"}
    assert not (project / "flake.lock").exists()  # --no-write-lock-file


def test_flake_text_fallback_reads_systems_and_attribute_names():
    facts = read_text(SEED, "no nix here")
    assert facts.systems == ("x86_64-linux", "aarch64-linux")
    assert facts.checks["x86_64-linux"] == ("host", "docs", "formatting")
    assert facts.packages["aarch64-linux"] == ("wrapper", "docs", "default")
    assert facts.how == "flake.nix's text" and facts.why_text == "no nix here"


def test_package_defaults_are_ccvms_own_matrix_files():
    for name in ("guest.yaml", "actions.yaml"):
        packaged = ROOT / "ccvm" / "matrix" / "defaults" / name
        assert packaged.read_bytes() == (ROOT / "matrix" / name).read_bytes(), f"copy matrix/{name} to {packaged}"


# -- the adopted workflow, as GitHub would run it ---------------------------

PINNED = "ccvm @ git+https://example.invalid/ccvm.git@0123456789abcdef0123456789abcdef01234567"


def adopted(tmp_path: Path, *args: str, boots: bool = False) -> tuple[Path, subprocess.CompletedProcess]:
    if boots:  # the declared seed-style launcher, with the seed's flake (two systems, flake checks)
        repo = declared_repo(tmp_path)
        shutil.copy(SEED / "flake.nix", repo / "flake.nix")
        GitRepo(repo).commit("a flake")
    else:
        repo = seed_repo(tmp_path)
    init = ccvm(repo, "init", *args)
    assert init.returncode == 0, init.stdout + init.stderr
    return repo, init


def set_ccvm_pip(repo: Path, value: str) -> None:
    actions = repo / "matrix" / "actions.yaml"
    text = "".join(
        f"ccvm_pip: {json.dumps(value)}\n" if line.startswith("ccvm_pip:") else line
        for line in actions.read_text().splitlines(keepends=True)
    )
    actions.write_text(text)
    done = ccvm(repo, "generate")
    assert done.returncode == 0, done.stdout + done.stderr


def jobs_of(repo: Path, name: str = "ccvm") -> dict:
    return yaml.safe_load((repo / ".github" / "workflows" / f"{name}.yml").read_text())["jobs"]


@pytest.fixture(scope="module")
def two_workflows(tmp_path_factory) -> dict[str, Path]:
    """A seed-style project that declares its launcher and boot scenarios, adopted as this (editable) ccvm
    leaves it, ccvm_pip unset; and with ccvm_pip set."""
    unset, _ = adopted(tmp_path_factory.mktemp("unset"), boots=True)
    pinned, _ = adopted(tmp_path_factory.mktemp("pinned"), boots=True)
    set_ccvm_pip(pinned, PINNED)
    return {"unset": unset, "pinned": pinned}


@pytest.mark.parametrize("variant", ["unset", "pinned"])
def test_the_adopted_workflow_passes_the_schema_and_zizmor_pedantic(
    two_workflows, variant, zizmor_bin, check_jsonschema_bin
):
    workflow = two_workflows[variant] / ".github" / "workflows" / "ccvm.yml"
    schema = schema_check(check_jsonschema_bin, workflow)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    status, findings = zizmor(zizmor_bin, workflow)
    assert findings == [] and status == 0, findings


@pytest.mark.parametrize("variant", ["unset", "pinned"])
def test_the_adopted_workflow_keeps_the_hygiene_rules(two_workflows, variant):
    jobs = jobs_of(two_workflows[variant])
    for name, job in jobs.items():
        assert isinstance(job.get("timeout-minutes"), int) and job["timeout-minutes"] > 0, name
        checkouts = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
        assert len(checkouts) == 1 and checkouts[0]["with"]["persist-credentials"] is False, name
        assert all("${{" not in step.get("run", "") for step in job["steps"]), name
        caches = {
            s["with"]["path"]: s["with"]["key"] for s in job["steps"] if s.get("uses", "").startswith("actions/cache@")
        }
        assert caches["~/.cache/pip"].endswith("${{ hashFiles('matrix/actions.yaml') }}"), name
    assert jobs["boot"]["steps"] and "~/.cache/ccvm" in {
        s["with"]["path"] for s in jobs["boot"]["steps"] if s.get("uses", "").startswith("actions/cache@")
    }
    guest = next(s for s in jobs["boot"]["steps"] if s.get("with", {}).get("path") == "~/.cache/ccvm")
    assert guest["with"]["key"].endswith("${{ hashFiles('matrix/guest.yaml') }}")


def uses_nix(step: dict) -> bool:
    text = " ".join([step.get("run", ""), *map(str, step.get("env", {}).values())])
    return "nix" in text.replace("install-nix-action", "")


def test_every_job_that_runs_nix_installs_it_first_with_flakes_on(two_workflows):
    jobs = jobs_of(two_workflows["pinned"])
    commands = [entry["command"] for entry in jobs["checks"]["strategy"]["matrix"]["include"]]
    assert any(command.startswith("ccvm flake-check --require nix") for command in commands)
    for name, job in jobs.items():
        steps = job["steps"]
        installs = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("cachix/install-nix-action@")]
        # checks: the matrix's commands (one is flake-check) run through $COMMAND, so Nix is always there first
        nix_runs = [i for i, s in enumerate(steps) if uses_nix(s) or "$COMMAND" in s.get("run", "")]
        if name == "checks":
            assert len(installs) == 1 and installs[0] < min(nix_runs), name
            config = steps[installs[0]]["with"]["extra_nix_config"]
            assert "experimental-features = nix-command flakes" in config
            assert not any("nix-bin" in s.get("run", "") for s in steps)
        elif nix_runs:
            assert installs and installs[0] < min(nix_runs), name
    actions = load_matrix(two_workflows["pinned"] / "matrix").actions
    assert (
        actions.action("cachix/install-nix-action").ref
        in (two_workflows["pinned"] / ".github/workflows/ccvm.yml").read_text()
    )


def setup_packages() -> set[str]:
    """What ccvm's own .ci/setup installs on a Debian or Ubuntu machine (its packages=(...) line)."""
    line = next(line for line in (ROOT / ".ci" / "setup").read_text().splitlines() if line.startswith("packages=("))
    return set(line.removeprefix("packages=(").removesuffix(")").split())


def test_the_boot_job_installs_what_ccvms_setup_installs_keyring_included(two_workflows):
    boot = jobs_of(two_workflows["pinned"])["boot"]
    names = [step.get("name", "") for step in boot["steps"]]
    apt = next(step["run"] for step in boot["steps"] if "apt-get install" in step.get("run", ""))
    installed = set(apt.split("--no-install-recommends", 1)[1].split())
    assert {"debian-archive-keyring", "qemu-system-x86", "qemu-system-arm", "cpio"} <= installed
    assert setup_packages() <= installed, setup_packages() - installed
    boot_at = names.index(BOOT_STEP)
    assert names.index(next(n for n in names if n.startswith("Install QEMU"))) < boot_at


def test_kvm_cells_on_kvm_runners_require_kvm_and_others_probe_and_report_the_skip(two_workflows):
    repo = two_workflows["pinned"]
    kvm_runners = load_matrix(repo / "matrix").actions.kvm_runners
    boot = jobs_of(repo)["boot"]
    cells = {entry["cell"]: entry for entry in boot["strategy"]["matrix"]["include"]}
    flags = {cell: (entry["require"], entry["allow_missing"]) for cell, entry in cells.items()}
    assert cells["x86_64-kvm-q35"]["runner"] in kvm_runners and flags["x86_64-kvm-q35"] == ("kvm", "")
    assert cells["aarch64-kvm-virt"]["runner"] not in kvm_runners and flags["aarch64-kvm-virt"] == ("", "kvm")
    assert flags["x86_64-tcg-q35"] == flags["aarch64-tcg-virt"] == ("", "")
    steps = {step.get("name", ""): step for step in boot["steps"]}
    assert steps["Enable /dev/kvm"]["if"] == "matrix.accel == 'kvm'"
    assert "sudo udevadm trigger --name-match=kvm" in steps["Enable /dev/kvm"]["run"]
    run = steps[BOOT_STEP]
    assert run["env"]["REQUIRE"] == "${{ matrix.require }}"
    assert run["env"]["ALLOW_MISSING"] == "${{ matrix.allow_missing }}"
    assert 'args+=(--require "$REQUIRE")' in run["run"] and 'ccvm boot "${args[@]}"' in run["run"]
    assert 'args+=(--allow-missing "$ALLOW_MISSING")' in run["run"]
    summary = steps["Results and skip reasons in the job summary (ccvm report)"]
    assert summary["if"] == "always()" and '--summary "$GITHUB_STEP_SUMMARY"' in summary["run"]
    names = list(steps)
    assert names.index("Enable /dev/kvm") < names.index(BOOT_STEP)


def test_concurrency_cancels_superseded_pull_request_runs_only(two_workflows):
    doc = yaml.safe_load((two_workflows["pinned"] / ".github" / "workflows" / "ccvm.yml").read_text())
    group = doc["concurrency"]["group"]
    assert "github.event.pull_request.number" in group and "github.sha" in group and "github.ref" not in group
    assert doc["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_the_boot_matrix_is_a_list_of_exactly_the_matrix_cells(two_workflows):
    repo = two_workflows["pinned"]
    matrix = jobs_of(repo)["boot"]["strategy"]["matrix"]
    assert list(matrix) == ["include"]
    listed = ccvm(repo, "matrix", "--no-probe", "--json")
    assert listed.returncode == 0, listed.stderr
    ids = [cell["id"] for cell in json.loads(listed.stdout)["cells"]]
    assert ids and [entry["cell"] for entry in matrix["include"]] == ids


def test_ccvm_comes_from_the_matrix_and_inits_guess_is_printed(tmp_path, two_workflows):
    repo, init = adopted(tmp_path)
    # This test's ccvm is an editable install of the checkout: nothing GitHub can install, so a placeholder.
    guess = next(line for line in init.stdout.splitlines() if line.startswith("guessed: ccvm_pip:"))
    assert "editable install" in guess and "set ccvm_pip in matrix/actions.yaml" in guess
    pip = load_matrix(repo / "matrix").actions.ccvm_pip
    assert pip is not None and not pip.requirement and "editable" in pip.unset
    for job in jobs_of(repo).values():
        step = next(s for s in job["steps"] if s.get("name", "").startswith("Install ccvm"))
        assert step["run"].rstrip().endswith("exit 1") and f"line={pip.line}" in step["run"]
        assert "::error file=matrix/actions.yaml" in step["run"] and step["env"]["WHY"] == pip.unset
    for job in jobs_of(two_workflows["pinned"]).values():
        step = next(s for s in job["steps"] if s.get("name", "").startswith("Install ccvm"))
        assert step["env"]["CCVM_PIP"] == PINNED and '"$CCVM_PIP"' in step["run"]
    text = (two_workflows["pinned"] / ".github" / "workflows" / "ccvm.yml").read_text()
    assert "CCVM_PIP_SPEC" not in text and '"${CCVM_PIP_SPEC:-ccvm}"' not in text


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("ccvm", "is not pinned"),
        ("ccvm>=0.1", "is not pinned"),
        ("ccvm @ git+https://example.invalid/ccvm.git", "names no revision"),
        ("ccvm @ file:///home/me/ccvm", "a path on this machine"),
        ("ccvm @ /home/me/ccvm", "a path on this machine"),
    ],
)
def test_an_unpinned_ccvm_pip_is_one_line_naming_the_file_and_line(tmp_path, value, says):
    repo, _ = adopted(tmp_path)
    actions = repo / "matrix" / "actions.yaml"
    lines = actions.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("ccvm_pip:"))
    lines[at] = f"ccvm_pip: {json.dumps(value)}"
    actions.write_text("\n".join(lines) + "\n")
    done = ccvm(repo, "matrix", "--no-probe")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"actions.yaml:{at + 1}:" in done.stderr and says in done.stderr


def test_the_noxfile_installs_ccvm_from_the_matrix(two_workflows, monkeypatch):
    import importlib.util

    repo = two_workflows["pinned"]
    spec = importlib.util.spec_from_file_location("adopted_noxfile", repo / "noxfile.py")
    noxfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noxfile)
    monkeypatch.chdir(repo)
    monkeypatch.delenv("CCVM_PIP_SPEC", raising=False)
    assert noxfile.ccvm_requirement(None) == PINNED
    monkeypatch.setenv("CCVM_PIP_SPEC", "/my/checkout")
    assert noxfile.ccvm_requirement(None) == "/my/checkout"


def test_a_hand_written_ccvm_yml_is_left_alone_with_init_workflow_name(tmp_path):
    repo = seed_repo(tmp_path)
    mine = repo / ".github" / "workflows" / "ccvm.yml"
    mine.write_text("name: mine\n")
    refused = ccvm(repo, "init")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "ccvm init --workflow NAME" in refused.stderr and "rename the template" not in refused.stderr
    done = ccvm(repo, "init", "--workflow", "ccvm-ci")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote .github/workflows/ccvm-ci.yml" in done.stdout
    assert mine.read_text() == "name: mine\n"
    assert load_matrix(repo / "matrix").actions.workflow == "ccvm-ci"
    assert set(jobs_of(repo, "ccvm-ci")) == {"checks"}  # the seed declares no boot scenarios
    check = ccvm(repo, "generate", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert mine.read_text() == "name: mine\n"
    bad = ccvm(repo, "init", "--force", "--workflow", "../x")
    assert bad.returncode == 2 and "--workflow" in bad.stderr


# PEP 610 records as pip writes them into a distribution's dist-info (here written by hand into a temporary
# dist-info, read back through importlib.metadata's own PathDistribution: installing ccvm from a VCS or an
# archive needs the network).
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("record", "requirement", "unset"),
    [
        (None, "ccvm==9.8.7", ""),
        (
            {
                "url": "https://github.com/o/ccvm.git",
                "vcs_info": {"vcs": "git", "commit_id": SHA, "requested_revision": "main"},
            },
            f"ccvm @ git+https://github.com/o/ccvm.git@{SHA}",
            "",
        ),
        (
            {"url": "https://example.invalid/ccvm-9.8.7.tar.gz", "archive_info": {"hashes": {"sha256": "ab"}}},
            "ccvm @ https://example.invalid/ccvm-9.8.7.tar.gz",
            "",
        ),
        (
            {"url": "file:///home/me/ccvm", "dir_info": {"editable": True}},
            "",
            "an editable install of file:///home/me/ccvm",
        ),
        ({"url": "file:///home/me/ccvm", "dir_info": {}}, "", "installed from file:///home/me/ccvm"),
        ({"url": "file:///srv/ccvm.git", "vcs_info": {"vcs": "git", "commit_id": SHA}}, "", "file:///srv/ccvm.git"),
    ],
)
def test_ccvm_pip_is_guessed_from_how_ccvm_is_installed(tmp_path, record, requirement, unset):
    from importlib.metadata import PathDistribution

    from ccvm.adopt.source import guess

    info = tmp_path / "ccvm-9.8.7.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ccvm\nVersion: 9.8.7\n")
    if record is not None:
        (info / "direct_url.json").write_text(json.dumps(record))
    found = guess(PathDistribution(info))
    assert found.requirement == requirement and unset in found.unset
    assert found.note.startswith("ccvm_pip: ") and "matrix/actions.yaml" in found.note
    if requirement:  # what init writes parses back as a pinned requirement
        from ccvm.matrix.actions import _requirement_problem

        assert _requirement_problem(requirement) is None


def test_a_book_in_doc_with_chapters_a_nix_build_makes_is_recorded_and_a_bare_ccvm_docs_passes(tmp_path):
    """The pattern of a project whose book lives in doc/, was written for mdBook 0.4 (multilingual), and
    lists a reference chapter a Nix derivation writes (tests/fixtures/books/older, a fixture of our own)."""
    repo = GitRepo.create(
        tmp_path / "book", files={"nix/doc.nix": "{ runCommand }:\n''cp $ref doc/src/settings-reference.md''\n"}
    )
    shutil.copytree(ROOT / "tests" / "fixtures" / "books" / "older", repo.path / "doc")
    repo.commit("a book")
    init = ccvm(repo.path, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert "book: doc" in init.stdout
    assert "settings-reference.md: listed in the book's SUMMARY.md with no file; nix/doc.nix names it" in init.stdout
    docs_yaml = yaml.safe_load((repo.path / "matrix" / "docs.yaml").read_text())
    assert docs_yaml == {"book": "doc", "generated": ["settings-reference.md"]}
    checks = {check.name: check.run for check in load_matrix(repo.path / "matrix").gate.checks}
    assert checks["docs"] == ("ccvm", "docs")
    docs = ccvm(repo.path, "docs")
    assert docs.returncode == 0, docs.stdout + docs.stderr
    assert "docs: checking doc (recorded in matrix/docs.yaml:" in docs.stdout
    assert "mdbook build skipped: chapters made at build time are not here (settings-reference.md" in docs.stdout


def test_init_force_writes_its_docs_yaml_again_and_keeps_one_the_project_made_its_own(tmp_path):
    """docs.yaml follows init's header rule, as style.yaml does: with the header it is init's (--force finds the
    book again), without it the project's (kept byte for byte)."""
    repo = GitRepo.create(tmp_path / "book")
    shutil.copytree(ROOT / "tests" / "fixtures" / "books" / "older", repo.path / "doc")
    repo.commit("a book")
    assert ccvm(repo.path, "init").returncode == 0
    docs_yaml = repo.path / "matrix" / "docs.yaml"
    assert docs_yaml.read_text().startswith("# Written by `ccvm init`")
    shutil.move(repo.path / "doc", repo.path / "book")
    again = ccvm(repo.path, "init", "--force")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "wrote matrix/docs.yaml" in again.stdout
    assert yaml.safe_load(docs_yaml.read_text())["book"] == "book"
    own = "book: book\ngenerated: [settings-reference.md]\n"  # the header line deleted: the project's own
    docs_yaml.write_text(own)
    kept = ccvm(repo.path, "init", "--force")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "left alone: matrix/docs.yaml (the project's own)" in kept.stdout
    assert docs_yaml.read_text() == own


# -- a seed-style project that declared its launcher first (docs/src/host-suite.md, steps 2 then 5) ------------

DECLARED = ROOT / "tests" / "fixtures" / "seed-project"
HOST_CHECK = ("ccvm", "host", "--junit", "reports/junit/gate-host.xml")


def declared_repo(tmp_path: Path, *keep: str) -> Path:
    """tests/fixtures/seed-project with nothing in matrix/ but launcher.yaml (and the files named in keep)."""
    repo = GitRepo.create(tmp_path / "declared", files={})
    shutil.copytree(DECLARED, repo.path, dirs_exist_ok=True)
    for path in (repo.path / "matrix").iterdir():
        if path.name not in {"launcher.yaml", *keep}:
            path.unlink()
    repo.commit("seed-style project with its launcher declared")
    return repo.path


def load_noxfile(repo: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"noxfile_{abs(hash(repo))}", repo / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RecordingSession:
    """Stands in for nox.Session (installing ccvm into a nox venv needs ccvm_pip, which a test cannot reach):
    records what a session would install and run."""

    def __init__(self) -> None:
        self.posargs: list[str] = []
        self.ran: list[tuple[str, ...]] = []

    def install(self, *args: str) -> None:
        pass

    def run(self, *args: str) -> None:
        self.ran.append(args)

    def error(self, message: str) -> None:
        raise AssertionError(message)


def test_init_completes_a_matrix_holding_only_the_declared_launcher_and_its_host_check_passes(tmp_path, monkeypatch):
    repo = declared_repo(tmp_path)
    launcher = (repo / "matrix" / "launcher.yaml").read_bytes()
    init = ccvm(repo, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert "launcher: seed-ccvm (matrix/launcher.yaml, kept as it is); host scripts: tests/host.sh" in init.stdout
    assert {f"wrote {path}" for path in ADDED} <= set(init.stdout.splitlines())
    assert "wrote matrix/launcher.yaml" not in init.stdout
    assert (repo / "matrix" / "launcher.yaml").read_bytes() == launcher
    checks = {check.name: check for check in load_matrix(repo / "matrix").gate.checks}
    assert checks["host"].run == HOST_CHECK
    plan = ccvm(repo, "gate", "--plan", "--json")
    assert plan.returncode == 0, plan.stderr
    assert "host" in {r["name"] for r in json.loads(plan.stdout)["requirements"]}
    for args in (["matrix", "--no-probe"], ["generate", "--check"], ["fmt"], ["lint"]):
        done = ccvm(repo, *args)
        assert done.returncode == 0, (args, done.stdout + done.stderr)
    # The gate's host check, run as the gate (and the workflow's checks job) runs it: through the declared
    # wrapper bin/ccvm, its own tests/host.sh given $CCVM (the wrapper itself, which it greps).
    host = ccvm(repo, *checks["host"].run[1:])
    assert host.returncode == 0, host.stdout + host.stderr
    assert "host.script.tests.host.sh: 11 passed, 0 failed" in host.stdout and "(seed-ccvm)" in host.stdout
    assert (repo / "reports" / "junit" / "gate-host.xml").is_file()
    include = jobs_of(repo)["checks"]["strategy"]["matrix"]["include"]
    assert {e["check"]: e["command"] for e in include}["host"] == " ".join(HOST_CHECK)
    # nox -s host runs what the gate's host check runs.
    monkeypatch.chdir(repo)
    monkeypatch.setenv("CCVM_PIP_SPEC", str(ROOT))
    monkeypatch.setattr(nox.registry, "_REGISTRY", type(nox.registry._REGISTRY)())  # this noxfile's sessions only
    session = RecordingSession()
    load_noxfile(repo).host(session)
    assert session.ran == [("ccvm", "host")]


def test_init_over_a_declared_launcher_still_refuses_the_second_time(tmp_path):
    repo = declared_repo(tmp_path)
    launcher = (repo / "matrix" / "launcher.yaml").read_bytes()
    assert ccvm(repo, "init").returncode == 0
    gate = (repo / "matrix" / "gate.yaml").read_bytes()
    again = ccvm(repo, "init")
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert "matrix/actions.yaml exists" in again.stderr and "--force" in again.stderr
    assert (repo / "matrix" / "gate.yaml").read_bytes() == gate
    forced = ccvm(repo, "init", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (repo / "matrix" / "launcher.yaml").read_bytes() == launcher


def test_a_matrix_file_the_project_wrote_is_kept_and_the_rest_written(tmp_path):
    repo = declared_repo(tmp_path, "boot.yaml")
    boot = (repo / "matrix" / "boot.yaml").read_bytes()
    done = ccvm(repo, "init")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "left alone: matrix/boot.yaml (the project's own)" in done.stdout
    assert (repo / "matrix" / "gate.yaml").exists() and (repo / "matrix" / "boot.yaml").read_bytes() == boot


def test_a_style_yaml_the_project_wrote_is_kept_and_read(tmp_path):
    repo = declared_repo(tmp_path)
    style = b'shfmt:\n  options: ["-ci"]\n'
    (repo / "matrix" / "style.yaml").write_bytes(style)
    init = ccvm(repo, "init")
    assert init.returncode == 0, init.stderr
    assert "left alone: matrix/style.yaml (the project's own)" in init.stdout
    assert (repo / "matrix" / "style.yaml").read_bytes() == style
    assert load_matrix(repo / "matrix").style.shfmt_options == ("-ci",)


def test_a_bad_launcher_yaml_stops_init_in_one_line_before_it_writes(tmp_path):
    repo = declared_repo(tmp_path)
    (repo / "matrix" / "launcher.yaml").write_text("name: x\n")
    done = ccvm(repo, "init")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "launcher.yaml" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in (repo / "matrix").iterdir()) == ["launcher.yaml"]


def test_the_written_noxfile_lists_a_host_and_a_boot_session(tmp_path, nox_bin):
    repo = declared_repo(tmp_path)
    assert ccvm(repo, "init").returncode == 0
    listed = subprocess.run(
        [nox_bin, "--list", "--json"], cwd=repo, capture_output=True, text=True, timeout=120, check=False
    )
    assert listed.returncode == 0, listed.stderr
    assert {"host", "boot", "lint", "fmt", "gate"} <= {s["session"] for s in json.loads(listed.stdout)}


# -- the flake read from its text (Nix cannot evaluate it here) ------------------------------------

LAYOUTS = ROOT / "tests" / "fixtures" / "adopt" / "flake-layouts"


def fixture_repo(tmp_path: Path, source: Path, name: str = "project") -> Path:
    repo = GitRepo.create(tmp_path / name, files={})
    shutil.copytree(source, repo.path, dirs_exist_ok=True)
    repo.commit("the project")
    return repo.path


def init_layout(tmp_path: Path, layout: str) -> tuple[Path, subprocess.CompletedProcess]:
    """A repository holding one flake-layouts fixture, after ``ccvm init`` passed in it."""
    repo = fixture_repo(tmp_path, LAYOUTS / layout, layout)
    init = ccvm(repo, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    return repo, init


@pytest.mark.parametrize(
    ("layout", "systems", "packages", "checks"),
    [
        (
            "each-default-system",
            ("x86_64-linux", "aarch64-linux", "x86_64-darwin", "aarch64-darwin"),
            ("launcher", "default"),
            ("smoke",),
        ),
        ("each-system", ("x86_64-linux", "aarch64-linux"), ("vm-runner",), ()),
        ("for-all-systems", ("x86_64-linux", "aarch64-linux", "x86_64-darwin"), ("sandbox", "docs"), ("docs",)),
        ("flake-parts", ("x86_64-linux", "aarch64-linux"), ("wrapper", "default"), ("host",)),
        ("let-in-rec", ("x86_64-linux",), ("runner", "runner-debug", "default"), ()),
        ("nested-system", ("x86_64-linux",), ("image", "vm-start"), ("image-boots",)),
        ("supported-systems-rec", ("x86_64-linux", "aarch64-darwin"), ("emulator", "default"), ()),
        ("checks-imported", ("x86_64-linux",), (), ("formatting", "host", "egress")),
        ("import-overlays", ("x86_64-linux", "aarch64-linux"), ("runner-tool",), ()),
        ("only-default", ("x86_64-linux",), ("default",), ()),
    ],
)
def test_the_flake_text_is_read_in_each_common_layout(layout, systems, packages, checks):
    facts = read_text(LAYOUTS / layout, "no nix here")
    assert facts.systems == systems
    assert {system: facts.packages.get(system, ()) for system in systems} == dict.fromkeys(systems, packages)
    assert {system: facts.checks.get(system, ()) for system in systems} == dict.fromkeys(systems, checks)
    # nothing that is not a package (an overlay's attribute set, import's arguments) is ever a name
    assert not {"overlays", "overlay", "inherit", "system", "pkgs"} & {n for v in facts.packages.values() for n in v}


def test_names_the_text_cannot_decide_are_named_unsure_and_never_build_targets(tmp_path):
    facts = read_text(LAYOUTS / "unsure-names", "no nix here")
    assert facts.packages == {"x86_64-linux": ("cli",)}
    assert any("kvm-helper (behind a condition the text cannot decide)" in line for line in facts.unsure)
    assert any("more names ccvm cannot read" in line and "${...}" in line for line in facts.unsure)
    folded = read_text(LAYOUTS / "import-overlays", "no nix here")
    assert any(line.startswith("packages (x86_64-linux, aarch64-linux): more names") for line in folded.unsure)
    assert "machines.nix: No such file or directory (imported by the flake; read as unknown)" in folded.unsure
    # through init: builds.yaml has only the sure names, and init says what it left out
    repo, init = init_layout(tmp_path, "unsure-names")
    assert {t.attr for t in load_matrix(repo / "matrix").builds.targets} == {"cli"}
    assert "left out of builds.yaml" in init.stdout and "kvm-helper" in init.stdout


def test_a_flakes_only_package_default_is_its_build_target(tmp_path):
    repo, init = init_layout(tmp_path, "only-default")
    assert {(t.attr, t.system) for t in load_matrix(repo / "matrix").builds.targets} == {("default", "x86_64-linux")}
    assert "no flake packages" not in init.stdout and "packages.default" not in init.stdout


def test_default_is_left_out_only_where_the_text_shows_it_is_another_package(tmp_path):
    facts = read_text(LAYOUTS / "default-alias", "no nix here")
    # x86_64-linux: self.packages.x86_64-linux.launch; x86_64-darwin: the same text reaching the same input.
    # aarch64-linux: a second callPackage written the same way, which the text cannot tell is the same.
    assert facts.default_is == {"x86_64-linux": "launch", "x86_64-darwin": "hello"}
    repo, init = init_layout(tmp_path, "default-alias")
    assert {(t.attr, t.system) for t in load_matrix(repo / "matrix").builds.targets} == {
        ("launch", "x86_64-linux"),
        ("tools", "x86_64-linux"),
        ("launch", "aarch64-linux"),
        ("default", "aarch64-linux"),
    }
    assert "guessed: packages.default (aarch64-linux) is a build target: the flake's text does not show" in init.stdout


def test_a_flake_nix_that_does_not_parse_is_said_and_nothing_is_guessed(tmp_path):
    (tmp_path / "flake.nix").write_text('{ outputs = { self }: { packages.x86_64-linux.a = "x" }; }\n')
    facts = read_text(tmp_path, "no nix here")
    assert facts.packages == {} and facts.systems == ()
    assert facts.unsure == ("flake.nix does not parse (line 1: expected ';', found '}'): no packages or checks",)


# -- the launcher and the kind of each script --------------------------------------------------------

SCRIPTS = ROOT / "tests" / "fixtures" / "adopt" / "seed-scripts"


def test_init_declares_the_launcher_and_wires_only_the_host_tests(tmp_path):
    repo = fixture_repo(tmp_path, SCRIPTS)
    init = ccvm(repo, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    lines = init.stdout.splitlines()
    assert "launcher: bin/sandbox (bin/sandbox reads CCVM_DRYRUN)" in lines
    kinds = {line.split(": ")[1]: line.split(": ")[2].split(" ")[0] for line in lines if line.startswith("script: ")}
    assert kinds == {
        "tests/host.sh": "host",
        "tests/boot.sh": "boot",
        "tests/stub-agent.sh": "stub",
        "tests/egress.sh": "flake-check",
        "tests/policy.sh": "flake-check",
        "tests/lib.sh": "other",
    }
    assert "guessed: tests/egress.sh: runs only through nix flake check" in init.stdout
    assert "SANDBOX_ALLOW" in init.stdout and "POLICY_FILE" in init.stdout
    matrix = load_matrix(repo / "matrix")
    launcher = matrix.declared_launcher
    assert launcher is not None and launcher.argv == ("bin/sandbox",) and not launcher.build
    assert launcher.dry_run.variable == "CCVM_DRYRUN" and launcher.host_scripts == ("tests/host.sh",)
    checks = {check.name: check.run for check in matrix.gate.checks}
    assert checks["host"] == ("ccvm", "host", "--junit", "reports/junit/gate-host.xml")
    assert not any(name.startswith("boot-") for name in checks)  # it declares no boot scenarios yet
    assert set(jobs_of(repo)) == {"checks"}
    sessions = {s.name: s for s in ast_sessions(repo / "noxfile.py")}
    assert "host" in sessions and "boot" not in sessions
    for args in (["generate", "--check"], ["gate", "--plan"], ["lint"], ["matrix", "--no-probe"]):
        done = ccvm(repo, *args)
        assert done.returncode == 0, (args, done.stdout + done.stderr)
    # The gate's host check as the gate runs it: the project's own launcher, its own host test, no VM.
    host = ccvm(repo, *checks["host"][1:])
    assert "host.script.tests.host.sh: 3 passed, 0 failed" in host.stdout, host.stdout + host.stderr
    assert "(sandbox)" in host.stdout
    assert (repo / "reports" / ".gitignore").read_text() == "*\n"
    assert GitRepo(repo).git("status", "--porcelain", "--", "reports") == ""


def ast_sessions(path: Path) -> list:
    import ast

    class Session:
        def __init__(self, name: str) -> None:
            self.name = name

    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            decorator = node.decorator_list[0]
            name = node.name
            if isinstance(decorator, ast.Call):
                name = next(k.value.value for k in decorator.keywords if k.arg == "name")
            found.append(Session(name))
    return found


def test_the_noxfile_init_writes_passes_ruff_at_its_default_and_a_shorter_line(tmp_path):
    ruff_bin = str(BIN / "ruff")  # a test dependency of ccvm, beside this interpreter
    repo = fixture_repo(tmp_path, SCRIPTS)
    assert ccvm(repo, "init").returncode == 0
    for width in ("79", "88", "120"):
        for args in (["check", "--isolated"], ["format", "--isolated", "--check"]):
            done = subprocess.run(
                [ruff_bin, *args, "--line-length", width, "noxfile.py"],
                cwd=repo,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, (width, args, done.stdout + done.stderr)


def test_a_project_with_no_launcher_gets_no_check_of_ccvms_own_launcher(tmp_path):
    files = {
        "flake.nix": (LAYOUTS / "supported-systems-rec" / "flake.nix").read_text(),
        "tests/run.sh": "#!/usr/bin/env bash\n# Lints the scripts.\nset -eu\necho ok\n",
    }
    repo = GitRepo.create(tmp_path / "plain", files=files).path
    init = ccvm(repo, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert "launcher: none found" in init.stdout and "ccvm init --force" in init.stdout
    assert "matrix/launcher.yaml" in init.stdout and not (repo / "matrix" / "launcher.yaml").exists()
    checks = {check.name for check in load_matrix(repo / "matrix").gate.checks}
    assert "host" not in checks and not any(name.startswith("boot") for name in checks)
    assert set(jobs_of(repo)) == {"checks"}
    sessions = {s.name for s in ast_sessions(repo / "noxfile.py")}
    assert not {"host", "boot"} & sessions and {"lint", "fmt", "gate"} <= sessions
    plan = ccvm(repo, "gate", "--plan", "--json")
    assert not {"host"} & {r["name"] for r in json.loads(plan.stdout)["requirements"]}
    assert {t.attr for t in load_matrix(repo / "matrix").builds.targets} == {"emulator"}


def test_init_force_finds_the_launcher_again_and_keeps_one_the_project_wrote(tmp_path):
    repo = fixture_repo(tmp_path, SCRIPTS)
    assert ccvm(repo, "init").returncode == 0
    launcher = repo / "matrix" / "launcher.yaml"
    first = launcher.read_text()
    launcher.write_text(first.replace('"tests/host.sh"', ""))
    forced = ccvm(repo, "init", "--force")
    assert forced.returncode == 0, forced.stderr
    assert launcher.read_text() == first  # init's: written again
    mine = "".join(first.splitlines(keepends=True)[2:]) + "# mine now\n"
    launcher.write_text(mine)
    kept = ccvm(repo, "init", "--force")
    assert kept.returncode == 0, kept.stderr
    assert launcher.read_text() == mine and "left alone: matrix/launcher.yaml (the project's own)" in kept.stdout
    assert "launcher: sandbox (matrix/launcher.yaml, kept as it is)" in kept.stdout


def test_init_force_refuses_a_noxfile_an_earlier_init_wrote_naming_it(tmp_path):
    repo = fixture_repo(tmp_path, SCRIPTS)
    assert ccvm(repo, "init").returncode == 0
    old = '"""nox sessions that run ccvm\'s checks (written by `ccvm init`; edit freely).\n"""\n'
    (repo / "noxfile.py").write_text(old + "import nox\n")
    done = ccvm(repo, "init", "--force")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "noxfile.py was written by an earlier ccvm init" in done.stderr and "remove it" in done.stderr
    assert (repo / "noxfile.py").read_text() == old + "import nox\n"


def test_ccvm_host_build_runs_the_declared_build_step_first(tmp_path):
    repo = fixture_repo(tmp_path, SCRIPTS)
    (repo / "matrix").mkdir()
    system = f"{os.uname().machine}-linux"
    (repo / "matrix" / "launcher.yaml").write_text(
        "argv: [out/sandbox]\n"
        f'build: {{{system}: {{command: [sh, -c, "mkdir -p out && cp bin/sandbox out/"]}}}}\n'
        "dry_run: {variable: CCVM_DRYRUN}\nhost_scripts: [tests/host.sh]\n"
    )
    unbuilt = ccvm(repo, "host", "--script", "none")
    assert unbuilt.returncode == 2 and "out/sandbox: not an executable file" in unbuilt.stderr
    built = ccvm(repo, "host", "--build")
    assert (repo / "out" / "sandbox").is_file()
    assert "host.script.tests.host.sh: 3 passed, 0 failed" in built.stdout, built.stdout + built.stderr
    (repo / "matrix" / "launcher.yaml").write_text(
        f'argv: [out/sandbox]\nbuild: {{{system}: {{command: [sh, -c, "echo broken >&2; exit 3"]}}}}\n'
    )
    broken = ccvm(repo, "host", "--build")
    assert broken.returncode == 1 and "--build: build sh -c" in broken.stderr and "broken" in broken.stderr


def test_a_project_without_shell_scripts_gets_no_fmt_check_and_its_gate_passes(tmp_path):
    """shfmt would check nothing there: an empty JUnit fails the gate, so no fmt check is wired."""
    files = {
        "flake.nix": (LAYOUTS / "supported-systems-rec" / "flake.nix").read_text(),
        "README.md": "# plain\n\nNo scripts.\n",
    }
    repo = GitRepo.create(tmp_path / "noshell", files=files)
    init = ccvm(repo.path, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    gate = load_matrix(repo.path / "matrix").gate
    assert "fmt" not in {check.name for check in gate.checks}
    assert "fmt" not in {name for rule in gate.rules for name in rule.require} | set(gate.otherwise)
    repo.commit("adopt ccvm")
    done = ccvm(repo.path, "gate", "--base", "HEAD~1")
    assert done.returncode == 0, done.stdout + done.stderr
