"""The two external workflow linters the tests run: GitHub's workflow schema
(check-jsonschema) and zizmor at its strictest persona."""

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
