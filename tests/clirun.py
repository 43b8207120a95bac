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


def running_qemus(pid: int) -> list[int]:
    """The QEMU processes under ``pid`` (any depth) that have not ended; a zombie has ended."""
    under, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(child) for child in children.read_text().split()]
            except OSError:  # it ended meanwhile
                continue
            under += kids
            todo += kids
    running = []
    for child in under:
        try:
            stat = Path(f"/proc/{child}/stat").read_text()
        except OSError:
            continue
        name, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
        if name.startswith("qemu-system") and state != "Z":
            running.append(child)
    return running
