"""Formatting checks: shfmt on every shell script, nixfmt on every *.nix.

Each file is one case; a file that is not formatted fails with the diff
as its details.  With ``fix`` the tools rewrite the files in place.

Each tool's options and the files it takes come from matrix/style.yaml
(``ccvm.matrix.style``; ``ccvm init`` writes it from the project's own
settings).  Given no formatting flags, shfmt reads the .editorconfig
itself, as it does when run by hand.  nixfmt has no Python or Debian
package: it is taken from PATH.  A missing tool's files are reported
skipped, or failed where it is required (``ccvm.require``: --require TOOL, CI).
Options shfmt rejects are bad input (ConfigError, naming style.yaml's line),
found by one run on empty input before any file is checked or rewritten.

Every line a formatter would change is a finding; those the project's
baseline (matrix/baseline.yaml, ``ccvm.checks.baseline``) knows are
reported skipped, and a file fails only for new ones, with just the diff
hunks that hold them.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccvm import processes
from ccvm.checks.baseline import (
    Checked,
    Verdict,
    diff_findings,
    hold_up,
    judged_case,
    parse_error_finding,
    unformatted_case,
)
from ccvm.checks.sourcefiles import SourceFiles, discover
from ccvm.matrix.baseline import Baseline
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
    cases = [Case(name=f, outcome=requirements.outcome(name), message=message, file=f) for f in files]
    found = Suite(name=suite, cases=cases, properties={"tool": "missing", "files": str(len(files))}, seconds=0.0)
    if progress:
        progress.finished(found, 0.0)
    return found


def _quiet_env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}


def shfmt_case(
    shfmt: str,
    root: Path,
    relpath: str,
    *,
    fix: bool,
    options: tuple[str, ...] = (),
    baseline: Baseline | None = None,
) -> tuple[Case, Verdict | None]:
    """One shell script through shfmt (with the project's options): -d (diff) to check, -l -w to fix."""
    argv = [shfmt, *options, "-l", "-w", relpath] if fix else [shfmt, *options, "-d", relpath]
    done = processes.run(argv, timeout_s=TOOL_TIMEOUT_S, cwd=str(root), env=_quiet_env())
    if done.returncode is None:
        return Case(name=relpath, outcome=Outcome.FAIL, message="shfmt timed out", details=done.stderr), None
    baseline = baseline or Baseline()
    if fix:
        if done.ok:
            output = "rewritten by shfmt" if done.stdout.strip() else ""
            return Case(name=relpath, outcome=Outcome.PASS, output=output), None
        if not _parse_error_of(relpath, done.stderr):
            return _shfmt_broke(relpath, done), None
        finding = parse_error_finding("shfmt", root, relpath, first_line(done.stderr))
        return judged_case(
            "shfmt", relpath, [finding], baseline, lambda new: _cannot_parse("shfmt", relpath, done.stderr)
        )[0], None
    if done.ok:
        return judged_case("shfmt", relpath, [], baseline, lambda new: Case(name=relpath, outcome=Outcome.PASS))
    if done.stdout.strip():
        hint = shlex.join(["shfmt", *options, "-w", relpath])
        return judged_case(
            "shfmt",
            relpath,
            diff_findings("shfmt", relpath, done.stdout),
            baseline,
            lambda new: unformatted_case("shfmt", relpath, done.stdout, new, hint),
        )
    if not _parse_error_of(relpath, done.stderr):
        return _shfmt_broke(relpath, done), None
    finding = parse_error_finding("shfmt", root, relpath, first_line(done.stderr))
    return judged_case("shfmt", relpath, [finding], baseline, lambda new: _cannot_parse("shfmt", relpath, done.stderr))


def _parse_error_of(relpath: str, stderr: str) -> bool:
    """shfmt reports a script it cannot parse as ``FILE:LINE:COL: message``; anything else is shfmt failing."""
    return re.match(rf"{re.escape(relpath)}:\d+:\d+: ", stderr) is not None


def _shfmt_broke(relpath: str, done: processes.Completed) -> Case:
    """shfmt failed without judging the file (it could not read it, say): a failed case, and no verdict,
    so the suite judged nothing and the baseline's entries for shfmt are kept."""
    message = f"shfmt exited {done.returncode} without judging it: {first_line(done.stderr) or 'no output'}"
    return Case(name=relpath, outcome=Outcome.FAIL, message=message, details=done.stderr)


def shfmt_options_problem(shfmt: str, root: Path, options: tuple[str, ...]) -> str:
    """What shfmt says against ``options`` (its first line), or '' when it takes them.  shfmt is run once
    on empty input with them: empty input always parses, so a failure is the options (an unknown flag, a
    bad value), which shfmt would otherwise answer with its usage text for every file."""
    if not options:
        return ""
    done = processes.run([shfmt, *options], timeout_s=TOOL_TIMEOUT_S, cwd=str(root), env=_quiet_env())
    if done.ok or done.returncode is None:  # a hang is left to the cases, which report it per file
        return ""
    return first_line(done.stderr) or f"exited {done.returncode} on empty input"


def _cannot_parse(tool: str, relpath: str, stderr: str) -> Case:
    return Case(
        name=relpath, outcome=Outcome.FAIL, message=f"{tool} cannot parse it: {first_line(stderr)}", details=stderr
    )


def nixfmt_case(
    nixfmt: str,
    root: Path,
    relpath: str,
    *,
    fix: bool,
    options: tuple[str, ...] = (),
    baseline: Baseline | None = None,
) -> tuple[Case, Verdict | None]:
    """One Nix file through nixfmt.  nixfmt prints no diff, so a copy is
    formatted and compared; with ``fix`` the file itself is formatted."""
    source = root / relpath
    before = source.read_text(encoding="utf-8", errors="replace")
    with tempfile.TemporaryDirectory(prefix="ccvm-nixfmt-") as scratch:
        target = source if fix else Path(scratch) / source.name
        if not fix:
            shutil.copyfile(source, target)
        done = processes.run([nixfmt, *options, str(target)], timeout_s=TOOL_TIMEOUT_S, cwd=str(root), env=_quiet_env())
        after = target.read_text(encoding="utf-8", errors="replace")
    if done.returncode is None:
        return Case(name=relpath, outcome=Outcome.FAIL, message="nixfmt timed out", details=done.stderr), None
    baseline = baseline or Baseline()
    if not done.ok:
        finding = parse_error_finding("nixfmt", root, relpath, first_line(done.stderr).replace(str(target), relpath))
        if fix:
            fail = judged_case(
                "nixfmt", relpath, [finding], baseline, lambda new: _cannot_parse("nixfmt", relpath, done.stderr)
            )
            return fail[0], None
        return judged_case(
            "nixfmt", relpath, [finding], baseline, lambda new: _cannot_parse("nixfmt", relpath, done.stderr)
        )
    if fix:
        output = "rewritten by nixfmt" if before != after else ""
        return Case(name=relpath, outcome=Outcome.PASS, output=output), None
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{relpath}.orig",
            tofile=relpath,
        )
    )
    hint = shlex.join(["nixfmt", *options, relpath])
    return judged_case(
        "nixfmt",
        relpath,
        diff_findings("nixfmt", relpath, diff),
        baseline,
        lambda new: unformatted_case("nixfmt", relpath, diff, new, hint),
    )


def _suite(name: str, cases: list[Case], tool: str, seconds: float) -> Suite:
    return Suite(name=name, cases=cases, properties={"tool": tool, "files": str(len(cases))}, seconds=seconds)


def _run_per_file(
    name: str,
    files: tuple[str, ...],
    make_case: Callable[[str], tuple[Case, Verdict | None]],
    tool: str,
    progress: Progress | None,
    baseline: Baseline,
) -> Checked:
    if progress:
        progress.started(name, f"{len(files)} file(s)")
    start = time.monotonic()
    cases, verdicts = [], {}
    for relpath in files:
        began = time.monotonic()
        case, verdict = make_case(relpath)
        case.seconds = time.monotonic() - began
        cases.append(case)
        if verdict is not None:
            verdicts[relpath] = verdict
    suite = _suite(name, cases, tool, time.monotonic() - start)
    judged = len(verdicts) == len(files)  # every file was judged (a check, no tool failure)
    if judged:
        hold_up(suite, baseline, name.removeprefix("fmt."), verdicts)
    if progress:
        progress.finished(suite, time.monotonic() - start)
    return Checked(tool=name.removeprefix("fmt."), suite=suite, verdicts=verdicts if judged else None)


def _skipped(name: str, files: tuple[str, ...], reason: str, tool: str, progress: Progress | None) -> Checked:
    cases = [Case(name=f, outcome=Outcome.SKIP, message=reason, file=f) for f in files]
    suite = _suite(name, cases, tool, 0.0)
    if progress:
        progress.finished(suite, 0.0)
    return Checked(tool=name.removeprefix("fmt."), suite=suite, verdicts=None)


def _missing(
    name: str, program: str, files: tuple[str, ...], requirements: Requirements, progress: Progress | None
) -> Checked:
    """A formatter this host lacks: skipped, or failed where ``requirements`` require it; no verdicts."""
    suite = missing_suite(name, program, files, requirements, progress)
    return Checked(tool=name.removeprefix("fmt."), suite=suite, verdicts=None)


FORMATTERS = ("shfmt", "nixfmt")


def check_fmt(
    root: Path,
    fix: bool = False,
    *,
    progress: Progress | None = None,
    files: SourceFiles | None = None,
    tools: tuple[str, ...] = FORMATTERS,
    style: Style | None = None,
    baseline: Baseline | None = None,
    requirements: Requirements | None = None,
) -> list[Checked]:
    """Check (or with ``fix``, rewrite) the formatting of every shell script
    and Nix file of the project at ``root`` that ``style`` selects.  One suite
    per tool, with its verdicts per file (none for a tool that did not run); a
    tool with no files to look at gives no suite.  ``tools`` narrows it to
    some formatters; a missing one is skipped or, where ``requirements``
    require it, failed.  Findings ``baseline`` knows are reported skipped;
    only new ones fail."""
    files = files or discover(root)
    style = style or Style()
    baseline = baseline or Baseline()
    requirements = requirements or Requirements()
    shell, nix = style.fileset("shfmt").select(files.shell), style.fileset("nixfmt").select(files.nix)
    checked = []
    if shell and "shfmt" in tools:
        checked.append(_formatter_suite("shfmt", shfmt_case, root, shell, fix, style, baseline, progress, requirements))
    if nix and "nixfmt" in tools:
        checked.append(_formatter_suite("nixfmt", nixfmt_case, root, nix, fix, style, baseline, progress, requirements))
    return checked


def run_fmt(root: Path, fix: bool = False, **options: Any) -> list[Suite]:
    """check_fmt's suites (the same options), without the verdicts."""
    return [c.suite for c in check_fmt(root, fix, **options)]


def _formatter_suite(
    tool: str,
    case_of,
    root: Path,
    files: tuple[str, ...],
    fix: bool,
    style: Style,
    baseline: Baseline,
    progress: Progress | None,
    requirements: Requirements,
) -> Checked:
    """One formatter's suite: skipped by style.yaml, missing (the require policy), or one case per file
    from ``case_of`` (shfmt_case, nixfmt_case) with the project's options for that tool."""
    name = f"fmt.{tool}"
    if style.skip.get(tool):
        return _skipped(name, files, style.skip[tool], "skipped", progress)
    program = find_tool(tool)
    if program is None:
        return _missing(name, tool, files, requirements, progress)
    if tool == "shfmt" and (problem := shfmt_options_problem(program, root, style.options_of(tool))):
        raise style.options_error(
            tool,
            f"shfmt rejects its options ({shlex.join(style.options_of(tool))}): {problem}; give only options "
            "this shfmt knows (shfmt --help lists them), or none to follow .editorconfig",
        )

    def one(relpath: str) -> tuple[Case, Verdict | None]:
        return case_of(program, root, relpath, fix=fix, options=style.options_of(tool), baseline=baseline)

    return _run_per_file(name, files, one, program, progress, baseline)
