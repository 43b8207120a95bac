"""The one way tests run the ccvm CLI: ``python -m ccvm ...`` in a child
process of this interpreter, as a user (or nox) does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CCVM = (sys.executable, "-m", "ccvm")


def ccvm_argv(*args: str) -> list[str]:
    """The command line, for a test that drives the process itself (pexpect, Popen)."""
    return [*CCVM, *args]


def run_ccvm(
    *args: str,
    cwd: Path | str = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    input: str | None = None,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``ccvm ARGS`` to completion, output captured (as text unless ``text=False``);
    ``timeout`` only stops a hang."""
    return subprocess.run(
        ccvm_argv(*args), cwd=cwd, env=env, input=input, capture_output=True, text=text, timeout=timeout
    )
