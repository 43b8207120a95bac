"""Formatting checks: shfmt on every shell script, nixfmt on every *.nix.

Each file is one case; a file that is not formatted fails with the diff
as its details.  With ``fix`` the tools rewrite the files in place.

shfmt's options and the files each tool takes come from matrix/style.yaml
(``ccvm.matrix.style``; ``ccvm init`` writes it from the project's treefmt
or .editorconfig settings).  Given no formatting flags, shfmt reads the
.editorconfig itself, as it does when run by hand.  nixfmt has no Python or
Debian package: it is taken from PATH.  A missing tool's files are reported
skipped, or failed where it is required (``ccvm.require``: --require TOOL, CI).
"""

from __future__ import annotations

import difflib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ccvm import processes
from ccvm.checks.sourcefiles import SourceFiles, discover
from ccvm.matrix.style import Style
from ccvm.processes import find_program
from ccvm.report.progress import Progress
from ccvm.report.results import Case, Outcome, Suite
from ccvm.require import Requirements
from ccvm.text import first_line

TOOL_TIMEOUT_S = 60.0  # one file through one formatter
LINT_EXTRA_HINT = "install the lint extra: pip install -e '.[lint]' (nox -s fmt and nox -s lint do)"
NIXFMT_HINT = "no PyPI or Debian package provides it; install it with Nix"


def missing_reason(name: str) -> str:
    """Why a tool was not run: where it was looked for, and how to get it."""
    if name == "nixfmt":
        return f"nixfmt not found on PATH ({NIXFMT_HINT})"
    return f"{name} not found in {Path(sys.executable).parent} or on PATH; {LINT_EXTRA_HINT}"


def find_tool(name: str) -> str | None:
    """A formatter or linter: the lint extra's, beside this Python, else on PATH (nixfmt: PATH only)."""
    return find_program(name, path_only=name == "nixfmt")


def missing_suite(
    suite: str, name: str, files: tuple[str, ...], requirements: Requirements, progress: Progress | None
) -> Suite:
    """A tool this host lacks: each of its files skipped, or failed when it is required."""
    message = requirements.message(missing_reason(name), name)
    cases = [Case(name=f, outcome=requirements.outcome(name), message=message) for f in files]
    found = Suite(name=suite, cases=cases, properties={"tool": "missing", "files": str(len(files))}, seconds=0.0)
    if progress:
        progress.finished(found, 0.0)
    return found


def _quiet_env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}


def _timed(check: Callable[[], Case]) -> Case:
    start = time.monotonic()
    case = check()
    case.seconds = time.monotonic() - start
    return case


def shfmt_case(shfmt: str, root: Path, relpath: str, *, fix: bool, options: tuple[str, ...] = ()) -> Case:
    """One shell script through shfmt (with the project's options): -d (diff) to check, -l -w to fix."""
    argv = [shfmt, *options, "-l", "-w", relpath] if fix else [shfmt, *options, "-d", relpath]
    done = processes.run(argv, timeout_s=TOOL_TIMEOUT_S, cwd=str(root), env=_quiet_env())
    if done.returncode is None:
        return Case(name=relpath, outcome=Outcome.FAIL, message="shfmt timed out", details=done.stderr)
    if done.ok:
        output = "rewritten by shfmt" if fix and done.stdout.strip() else ""
        return Case(name=relpath, outcome=Outcome.PASS, output=output)
    if done.stdout.strip() and not fix:
        return Case(
            name=relpath,
            outcome=Outcome.FAIL,
            details=done.stdout,
            message=f"{relpath}: not formatted; run ccvm fmt --fix (or shfmt {' '.join([*options, '-w', relpath])})",
        )
    return Case(
        name=relpath,
        outcome=Outcome.FAIL,
        message=f"shfmt cannot parse it: {first_line(done.stderr)}",
        details=done.stderr,
    )


def nixfmt_case(nixfmt: str, root: Path, relpath: str, *, fix: bool) -> Case:
    """One Nix file through nixfmt.  nixfmt prints no diff, so a copy is
    formatted and compared; with ``fix`` the file itself is formatted."""
    source = root / relpath
    before = source.read_text(encoding="utf-8", errors="replace")
    with tempfile.TemporaryDirectory(prefix="ccvm-nixfmt-") as scratch:
        target = source if fix else Path(scratch) / source.name
        if not fix:
            shutil.copyfile(source, target)
        done = processes.run([nixfmt, str(target)], timeout_s=TOOL_TIMEOUT_S, cwd=str(root), env=_quiet_env())
        after = target.read_text(encoding="utf-8", errors="replace")
    if done.returncode is None:
        return Case(name=relpath, outcome=Outcome.FAIL, message="nixfmt timed out", details=done.stderr)
    if not done.ok:
        return Case(
            name=relpath,
            outcome=Outcome.FAIL,
            message=f"nixfmt cannot parse it: {first_line(done.stderr)}",
            details=done.stderr,
        )
    if before == after:
        return Case(name=relpath, outcome=Outcome.PASS)
    if fix:
        return Case(name=relpath, outcome=Outcome.PASS, output="rewritten by nixfmt")
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{relpath}.orig",
            tofile=relpath,
        )
    )
    return Case(
        name=relpath,
        outcome=Outcome.FAIL,
        details=diff,
        message=f"{relpath}: not formatted; run ccvm fmt --fix (or nixfmt {relpath})",
    )


def _suite(name: str, cases: list[Case], tool: str, seconds: float) -> Suite:
    return Suite(name=name, cases=cases, properties={"tool": tool, "files": str(len(cases))}, seconds=seconds)


def _run_per_file(
    name: str, files: tuple[str, ...], make_case: Callable[[str], Case], tool: str, progress: Progress | None
) -> Suite:
    if progress:
        progress.started(name, f"{len(files)} file(s)")
    start = time.monotonic()
    suite = _suite(name, [_timed(lambda f=f: make_case(f)) for f in files], tool, time.monotonic() - start)
    if progress:
        progress.finished(suite, time.monotonic() - start)
    return suite


FORMATTERS = ("shfmt", "nixfmt")


def run_fmt(
    root: Path,
    fix: bool = False,
    *,
    progress: Progress | None = None,
    files: SourceFiles | None = None,
    tools: tuple[str, ...] = FORMATTERS,
    style: Style | None = None,
    requirements: Requirements | None = None,
) -> list[Suite]:
    """Check (or with ``fix``, rewrite) the formatting of every shell script
    and Nix file of the project at ``root`` that ``style`` selects.  One suite
    per tool; a tool with no files to look at gives no suite.  ``tools``
    narrows it to some formatters; a missing one is skipped or, where
    ``requirements`` require it, failed."""
    files = files or discover(root)
    style = style or Style()
    requirements = requirements or Requirements()
    shell, nix = style.fileset("shfmt").select(files.shell), style.fileset("nixfmt").select(files.nix)
    suites = []
    if shell and "shfmt" in tools:
        shfmt = find_tool("shfmt")
        if shfmt is None:
            suites.append(missing_suite("fmt.shfmt", "shfmt", shell, requirements, progress))
        else:

            def one(relpath: str) -> Case:
                return shfmt_case(shfmt, root, relpath, fix=fix, options=style.shfmt_options)

            suites.append(_run_per_file("fmt.shfmt", shell, one, shfmt, progress))
    if nix and "nixfmt" in tools:
        nixfmt = find_tool("nixfmt")
        if nixfmt is None:
            suites.append(missing_suite("fmt.nixfmt", "nixfmt", nix, requirements, progress))
        else:
            suites.append(
                _run_per_file("fmt.nixfmt", nix, lambda f: nixfmt_case(nixfmt, root, f, fix=fix), nixfmt, progress)
            )
    return suites
