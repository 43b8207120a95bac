"""Lint: shellcheck on every shell script, ruff (rules and formatting) on
every Python file.  One case per file; a finding fails its file's case
with ``file:line:column: code message`` lines.

Which scripts shellcheck takes, and at what severity, come from
matrix/style.yaml (``ccvm.matrix.style``).  shellcheck runs from the project
root with paths relative to it, so it finds the project's .shellcheckrc
(it looks in each script's directory and upward) as it does when run by hand."""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from ccvm import processes
from ccvm.checks.fmt import find_tool, missing_suite
from ccvm.checks.sourcefiles import SourceFiles, discover
from ccvm.matrix.style import Style
from ccvm.report.progress import Progress
from ccvm.report.results import Case, Outcome, Suite
from ccvm.require import Requirements
from ccvm.text import first_line

BATCH_TIMEOUT_S = 300.0  # one tool over all of its files
LINTERS = ("shellcheck", "ruff")


def _env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}


def _relative(root: Path, filename: str) -> str:
    path = Path(filename)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() if path.is_absolute() else path.as_posix()
    except ValueError:
        return filename


def _cases_from_findings(files: tuple[str, ...], findings: dict[str, list[str]], tool: str) -> list[Case]:
    cases = []
    for relpath in files:
        lines = findings.get(relpath, [])
        if not lines:
            cases.append(Case(name=relpath, outcome=Outcome.PASS))
            continue
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        cases.append(
            Case(
                name=relpath,
                outcome=Outcome.FAIL,
                message=f"{lines[0]}{more}",
                details="\n".join(lines) + f"\n({tool})\n",
            )
        )
    return cases


def _tool_broke(files: tuple[str, ...], tool: str, done: processes.Completed) -> list[Case]:
    why = "timed out" if done.returncode is None else f"exited {done.returncode}"
    message = f"{tool} {why} without a report: {first_line(done.stderr) or 'no output'}"
    return [Case(name=relpath, outcome=Outcome.FAIL, message=message, details=done.stderr) for relpath in files]


def shellcheck_cases(shellcheck: str, root: Path, files: tuple[str, ...], *, severity: str = "") -> list[Case]:
    """All shell scripts in one shellcheck run (json1), split per file."""
    argv = [shellcheck, "--format=json1", "--external-sources", "--source-path=SCRIPTDIR"]
    argv += [f"--severity={severity}"] if severity else []
    argv += ["--", *files]
    done = processes.run(argv, timeout_s=BATCH_TIMEOUT_S, cwd=str(root), env=_env())
    try:
        comments = json.loads(done.stdout)["comments"]
    except (ValueError, KeyError, TypeError):
        return _tool_broke(files, "shellcheck", done)
    findings: dict[str, list[str]] = defaultdict(list)
    for c in sorted(comments, key=lambda c: (c["file"], c["line"], c["column"])):
        relpath = _relative(root, c["file"])
        findings[relpath].append(f"{relpath}:{c['line']}:{c['column']}: SC{c['code']} ({c['level']}) {c['message']}")
    if done.returncode not in (0, 1):
        # Some files could not be read or parsed at all; shellcheck says which on stderr.
        for relpath in files:
            if relpath in done.stderr and relpath not in findings:
                findings[relpath].append(f"{relpath}: shellcheck: {first_line(done.stderr)}")
    return _cases_from_findings(files, findings, "shellcheck")


def ruff_check_cases(ruff: str, root: Path, files: tuple[str, ...]) -> list[Case]:
    """ruff's rules (as configured in pyproject.toml), without fixing anything."""
    done = processes.run(
        [ruff, "check", "--output-format=json", "--no-fix", *files],
        timeout_s=BATCH_TIMEOUT_S,
        cwd=str(root),
        env=_env(),
    )
    try:
        reported = json.loads(done.stdout)
    except ValueError:
        return _tool_broke(files, "ruff check", done)
    findings: dict[str, list[str]] = defaultdict(list)
    for item in sorted(reported, key=lambda i: (i["filename"], i["location"]["row"], i["location"]["column"])):
        relpath = _relative(root, item["filename"])
        where = f"{relpath}:{item['location']['row']}:{item['location']['column']}"
        findings[relpath].append(f"{where}: {item.get('code') or 'error'} {item['message']}")
    return _cases_from_findings(files, findings, "ruff check")


def _split_diff(diff: str) -> dict[str, str]:
    """A multi-file unified diff (ruff format --diff) as {path: its part}."""
    parts: dict[str, list[str]] = {}
    current: list[str] | None = None
    lines = diff.splitlines(keepends=True)
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line.startswith("--- ") and following.startswith("+++ "):
            current = parts.setdefault(line[4:].strip(), [])
        if current is not None:
            current.append(line)
    return {path: "".join(text) for path, text in parts.items()}


def ruff_format_cases(ruff: str, root: Path, files: tuple[str, ...]) -> list[Case]:
    """ruff's formatter in check mode: a file it would change fails with the diff."""
    done = processes.run([ruff, "format", "--diff", *files], timeout_s=BATCH_TIMEOUT_S, cwd=str(root), env=_env())
    if done.returncode is None:
        return _tool_broke(files, "ruff format", done)
    diffs = {_relative(root, path): text for path, text in _split_diff(done.stdout).items()}
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    cases = []
    for relpath in files:
        failed_parse = next((line for line in errors if f" {relpath}:" in line or line.endswith(f" {relpath}")), "")
        if failed_parse:
            cases.append(Case(name=relpath, outcome=Outcome.FAIL, message=failed_parse, details=done.stderr))
        elif relpath in diffs:
            cases.append(
                Case(
                    name=relpath,
                    outcome=Outcome.FAIL,
                    details=diffs[relpath],
                    message=f"{relpath}: not formatted; run ruff format {relpath}",
                )
            )
        else:
            cases.append(Case(name=relpath, outcome=Outcome.PASS))
    if done.returncode not in (0, 1) and not any(c.outcome is Outcome.FAIL for c in cases):
        return _tool_broke(files, "ruff format", done)
    return cases


def _batch_suite(
    name: str, tool: str, files: tuple[str, ...], make_cases: Callable[[], list[Case]], progress: Progress | None
) -> Suite:
    if progress:
        progress.started(name, f"{len(files)} file(s)")
    start = time.monotonic()
    cases = make_cases()
    seconds = time.monotonic() - start
    suite = Suite(name=name, cases=cases, properties={"tool": tool, "files": str(len(files))}, seconds=seconds)
    if progress:
        progress.finished(suite, seconds)
    return suite


def lint_suite_count(files: SourceFiles, style: Style | None = None) -> int:
    shell = (style or Style()).fileset("shellcheck").select(files.shell)
    return (1 if shell else 0) + (2 if files.python else 0)


def run_lint(
    root: Path,
    *,
    progress: Progress | None = None,
    files: SourceFiles | None = None,
    style: Style | None = None,
    requirements: Requirements | None = None,
) -> list[Suite]:
    """shellcheck on the shell scripts ``style`` selects, ruff check and ruff
    format --diff on the Python files of the project at ``root``.  A tool
    with no files to look at gives no suite; a missing one is skipped or,
    where ``requirements`` require it, failed."""
    files = files or discover(root)
    style = style or Style()
    requirements = requirements or Requirements()
    shell = style.fileset("shellcheck").select(files.shell)
    suites = []
    shellcheck, ruff = find_tool("shellcheck"), find_tool("ruff")
    if shell and shellcheck is None:
        suites.append(missing_suite("lint.shellcheck", "shellcheck", shell, requirements, progress))
    elif shell:
        suites.append(
            _batch_suite(
                "lint.shellcheck",
                shellcheck,
                shell,
                lambda: shellcheck_cases(shellcheck, root, shell, severity=style.shellcheck_severity),
                progress,
            )
        )
    if files.python and ruff is None:
        for suite in ("lint.ruff-check", "lint.ruff-format"):
            suites.append(missing_suite(suite, "ruff", files.python, requirements, progress))
    elif files.python:
        suites.append(
            _batch_suite(
                "lint.ruff-check", ruff, files.python, lambda: ruff_check_cases(ruff, root, files.python), progress
            )
        )
        suites.append(
            _batch_suite(
                "lint.ruff-format", ruff, files.python, lambda: ruff_format_cases(ruff, root, files.python), progress
            )
        )
    return suites
