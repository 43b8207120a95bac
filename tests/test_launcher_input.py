"""Bad launcher input gives one line and a documented status, never a hang
or a traceback (dry runs: nothing boots)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from clirun import run_ccvm

ROOT = Path(__file__).resolve().parent.parent


def dry_run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CCVM_")}
    full_env.update(CCVM_MATRIX=str(ROOT / "matrix"), CCVM_DRYRUN="1", **env)
    return run_ccvm("vm", *args, cwd=cwd, env=full_env, timeout=120)


def one_line(result: subprocess.CompletedProcess, status: int, text: str) -> None:
    assert result.returncode == status, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert text in result.stderr


def test_a_fifo_in_place_of_the_settings_does_not_block(tmp_path):
    config = tmp_path / "cfg"
    config.mkdir()
    os.mkfifo(config / "settings.json")
    one_line(dry_run(tmp_path, "--config-dir", str(config), "--", "true"), 2, "not a regular file")


def test_an_empty_config_dir_variable_is_refused(tmp_path):
    one_line(dry_run(tmp_path, "--", "true", CCVM_CONFIG_DIR=""), 2, "CCVM_CONFIG_DIR is empty")


def test_the_root_directory_cannot_be_shared():
    one_line(dry_run(Path("/"), "--", "true"), 2, "cannot be shared")


def test_a_deleted_working_directory_is_one_line(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (
        "import os, sys, runpy; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); sys.argv = ['ccvm', 'vm', 'true']; "
        "runpy.run_module('ccvm', run_name='__main__')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCVM_")}
    env.update(CCVM_MATRIX=str(ROOT / "matrix"), CCVM_DRYRUN="1", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script, str(gone)], capture_output=True, text=True, timeout=120, env=env
    )
    one_line(result, 2, "working directory is gone")


def test_non_utf8_argv_still_gives_valid_json(tmp_path):
    import json

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CCVM_")}
    full_env.update(CCVM_MATRIX=str(ROOT / "matrix"), CCVM_DRYRUN="1")
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"ccvm", b"vm", b"prog", b"caf\xe9"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        env=full_env,
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout.decode("ascii"))
    assert plan["guest_argv"][1].encode("utf-8", "surrogateescape") == b"caf\xe9"
