"""Helpers for the tests that run real Nix on the fixture flakes.

Nix runs offline here: NIX_CONFIG turns the sandbox off (the fixtures'
builders are /bin/sh) and empties the substituters (no binary cache).
A test that runs nix asks for the ``nix_bin`` fixture (tests/conftest.py),
which puts it in the nix tier: without nix it skips, except under CI, where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import clirun
from junit_schema import assert_valid

ROOT = Path(__file__).resolve().parent.parent
FLAKES = ROOT / "tests" / "fixtures" / "flakes"
OFFLINE_NIX_CONFIG = "sandbox = false\nsubstituters =\n"
CCVM_TIMEOUT_S = 120  # each run takes a few seconds; this only stops a hang


def offline_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["NIX_CONFIG"] = OFFLINE_NIX_CONFIG + env.get("NIX_CONFIG", "")
    env.update(extra)
    return env


def host_system(nix: str) -> str:
    """The system nix (at path ``nix``) builds for here."""
    out = subprocess.run(
        [nix, "--extra-experimental-features", "nix-command", "show-config", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=offline_env(),
        check=True,
    ).stdout
    return json.loads(out)["system"]["value"]


def other_system(system: str) -> str:
    return "aarch64-linux" if system == "x86_64-linux" else "x86_64-linux"


@contextmanager
def slow_eval_flake(tmp_path: Path) -> Iterator[str]:
    """The slow-eval fixture flake: its evaluation downloads from a loopback server that
    accepts the connection and never answers, so it waits until it is stopped."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # never accepted: the kernel completes the handshake, then nothing is sent
        flake = flake_copy(tmp_path, "slow-eval")
        nix_file = Path(flake.removeprefix("path:")) / "flake.nix"
        url = f"http://127.0.0.1:{server.getsockname()[1]}/nixpkgs.tar.gz"
        nix_file.write_text(nix_file.read_text().replace("@URL@", url))
        yield flake


def flake_copy(tmp_path: Path, name: str) -> str:
    """A private copy of a fixture flake, as a path: reference (no git needed)."""
    target = tmp_path / name
    shutil.copytree(FLAKES / name, target)
    return f"path:{target}"


def run_ccvm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """ccvm with Nix offline (unless ``env`` says otherwise)."""
    return clirun.run_ccvm(*args, env=env if env is not None else offline_env(), timeout=CCVM_TIMEOUT_S)


@dataclass(frozen=True, kw_only=True)
class Result:
    outcome: str  # pass, fail, skipped
    message: str
    details: str
    seconds: float


def read_junit(path: Path) -> dict[str, Result]:
    """{suite name: its one case's result}; the file must be valid against junit-10.xsd."""
    assert_valid(path)
    results = {}
    for suite in ET.parse(path).getroot().iter("testsuite"):
        cases = list(suite.iter("testcase"))
        assert len(cases) == 1, f"{suite.get('name')} has {len(cases)} cases"
        case = cases[0]
        failure, skipped = case.find("failure"), case.find("skipped")
        node = failure if failure is not None else skipped
        outcome = "fail" if failure is not None else "skipped" if skipped is not None else "pass"
        results[suite.get("name")] = Result(
            outcome=outcome,
            message=node.get("message", "") if node is not None else "",
            details=(node.text or "") if node is not None else "",
            seconds=float(case.get("time") or 0),
        )
    return results
