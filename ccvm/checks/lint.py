"""Lint: shellcheck on every shell script, ruff (rules and formatting) on
every Python file.  One case per file; a finding fails its file's case
with ``file:line:column: code message`` lines.

Which files each tool takes, with which options (and shellcheck's
severity), come from matrix/style.yaml (``ccvm.matrix.style``).
shellcheck runs from the project root with paths relative to it, so it
finds the project's .shellcheckrc (it looks in each script's directory
and upward) as it does when run by hand.  ruff reads the project's own
configuration and is handed files with ``--force-exclude``, so its
``exclude`` and ``extend-exclude`` apply; a file they exclude is reported
skipped, saying so.  Findings the project's baseline (matrix/baseline.yaml)
knows are reported skipped; only new ones fail."""

from __future__ import annotations

import json
import os
import shlex
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccvm import processes
from ccvm.checks.baseline import (
    Checked,
    Finding,
    Verdict,
    diff_findings,
    hold_up,
    judged_case,
    parse_error_finding,
    source_line,
    unformatted_case,
)
from ccvm.checks.fmt import find_tool, missing_suite
from ccvm.checks.sourcefiles import SourceFiles, discover
from ccvm.matrix.baseline import Baseline
from ccvm.matrix.style import Style
from ccvm.report.progress import Progress
from ccvm.report.results import Case, Outcome, Suite
from ccvm.require import Requirements
from ccvm.text import first_line

BATCH_TIMEOUT_S = 300.0  # one tool over all of its files
LINT_PROGRAMS = ("shellcheck", "ruff")  # what --require/--allow-missing name


def _env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}


def _relative(root: Path, filename: str) -> str:
    path = Path(filename)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() if path.is_absolute() else path.as_posix()
    except ValueError:
        return filename


def _tool_broke(files: tuple[str, ...], tool: str, done: processes.Completed) -> list[Case]:
    why = "timed out" if done.returncode is None else f"exited {done.returncode}"
    message = f"{tool} {why} without a report: {first_line(done.stderr) or 'no output'}"
    return [Case(name=relpath, outcome=Outcome.FAIL, message=message, details=done.stderr) for relpath in files]


@dataclass(kw_only=True)
class Judged:
    """A tool's cases over its files, and per file what the baseline made of its findings (None: not judged)."""

    cases: list[Case]
    verdicts: dict[str, Verdict] | None = None


def _listing_case(relpath: str, tool: str) -> Callable[[list[Finding]], Case]:
    def fail(new: list[Finding]) -> Case:
        more = f" (and {len(new) - 1} more)" if len(new) > 1 else ""
        return Case(
            name=relpath,
            outcome=Outcome.FAIL,
            message=f"{new[0].text}{more}",
            details="\n".join(f.text for f in new) + f"\n({tool})\n",
        )

    return fail


def _judge_files(
    files: tuple[str, ...], findings: dict[str, list[Finding]], tool: str, label: str, baseline: Baseline
) -> Judged:
    cases, verdicts = [], {}
    for relpath in files:
        found = findings.get(relpath, [])
        case, verdict = judged_case(tool, relpath, found, baseline, _listing_case(relpath, label))
        cases.append(case)
        verdicts[relpath] = verdict
    return Judged(cases=cases, verdicts=verdicts)


def _source_lines(root: Path, relpath: str, cache: dict[str, list[str]]) -> list[str]:
    if relpath not in cache:
        try:
            cache[relpath] = (root / relpath).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            cache[relpath] = []
    return cache[relpath]


def shellcheck_cases(
    shellcheck: str,
    root: Path,
    files: tuple[str, ...],
    *,
    severity: str = "",
    options: tuple[str, ...] = (),
    baseline: Baseline | None = None,
) -> Judged:
    """All shell scripts in one shellcheck run (json1), split per file."""
    argv = [shellcheck, "--format=json1", "--external-sources", "--source-path=SCRIPTDIR", *options]
    argv += [f"--severity={severity}"] if severity else []
    argv += ["--", *files]
    done = processes.run(argv, timeout_s=BATCH_TIMEOUT_S, cwd=str(root), env=_env())
    try:
        comments = json.loads(done.stdout)["comments"]
    except (ValueError, KeyError, TypeError):
        return Judged(cases=_tool_broke(files, "shellcheck", done))
    findings: dict[str, list[Finding]] = defaultdict(list)
    lines: dict[str, list[str]] = {}
    for c in sorted(comments, key=lambda c: (c["file"], c["line"], c["column"])):
        relpath = _relative(root, c["file"])
        text = f"{relpath}:{c['line']}:{c['column']}: SC{c['code']} ({c['level']}) {c['message']}"
        line = source_line(_source_lines(root, relpath, lines), c["line"])
        findings[relpath].append(
            Finding(tool="shellcheck", file=relpath, rule=f"SC{c['code']}", line=c["line"], text=text, source_line=line)
        )
    if done.returncode not in (0, 1):
        # Some files could not be read at all; shellcheck says which on stderr.
        for relpath in files:
            if relpath in done.stderr and relpath not in findings:
                text = f"{relpath}: shellcheck: {first_line(done.stderr)}"
                findings[relpath].append(
                    Finding(tool="shellcheck", file=relpath, rule="unreadable", line=None, text=text)
                )
    return _judge_files(files, findings, "shellcheck", "shellcheck", baseline or Baseline())


def ruff_files(ruff: str, root: Path, files: tuple[str, ...]) -> tuple[str, ...] | None:
    """The files ruff takes under the project's own configuration (its exclude and extend-exclude), or None
    when ruff cannot say (then every file is given, and --force-exclude still applies)."""
    argv = [ruff, "check", "--show-files", "--force-exclude", *files]
    done = processes.run(argv, timeout_s=BATCH_TIMEOUT_S, cwd=str(root), env=_env())
    if not done.ok:
        return None
    shown = {_relative(root, line.strip()) for line in done.stdout.splitlines() if line.strip()}
    return tuple(relpath for relpath in files if relpath in shown)


def ruff_check_cases(
    ruff: str, root: Path, files: tuple[str, ...], *, options: tuple[str, ...] = (), baseline: Baseline | None = None
) -> Judged:
    """ruff's rules (as the project configures them), without fixing anything."""
    done = processes.run(
        [ruff, "check", "--output-format=json", "--no-fix", "--force-exclude", *options, *files],
        timeout_s=BATCH_TIMEOUT_S,
        cwd=str(root),
        env=_env(),
    )
    try:
        reported = json.loads(done.stdout)
    except ValueError:
        return Judged(cases=_tool_broke(files, "ruff check", done))
    findings: dict[str, list[Finding]] = defaultdict(list)
    lines: dict[str, list[str]] = {}
    for item in sorted(reported, key=lambda i: (i["filename"], i["location"]["row"], i["location"]["column"])):
        relpath = _relative(root, item["filename"])
        row = item["location"]["row"]
        rule = item.get("code") or "invalid-syntax"
        text = f"{relpath}:{row}:{item['location']['column']}: {rule} {item['message']}"
        line = source_line(_source_lines(root, relpath, lines), row)
        findings[relpath].append(
            Finding(tool="ruff-check", file=relpath, rule=rule, line=row, text=text, source_line=line)
        )
    return _judge_files(files, findings, "ruff-check", "ruff check", baseline or Baseline())


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


def ruff_format_cases(
    ruff: str, root: Path, files: tuple[str, ...], *, options: tuple[str, ...] = (), baseline: Baseline | None = None
) -> Judged:
    """ruff's formatter in check mode: a file it would change in new places fails with those hunks."""
    done = processes.run(
        [ruff, "format", "--diff", "--force-exclude", *options, *files],
        timeout_s=BATCH_TIMEOUT_S,
        cwd=str(root),
        env=_env(),
    )
    if done.returncode is None:
        return Judged(cases=_tool_broke(files, "ruff format", done))
    baseline = baseline or Baseline()
    diffs = {_relative(root, path): text for path, text in _split_diff(done.stdout).items()}
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    cases, verdicts = [], {}
    for relpath in files:
        failed_parse = next((line for line in errors if f" {relpath}:" in line or line.endswith(f" {relpath}")), "")
        if failed_parse:
            message = failed_parse.split(f"{relpath}:", 1)[-1] if f"{relpath}:" in failed_parse else failed_parse
            finding = parse_error_finding("ruff-format", root, relpath, f"{relpath}:{message.strip()}")

            def fail(new: list[Finding], line: str = failed_parse, relpath: str = relpath) -> Case:
                return Case(name=relpath, outcome=Outcome.FAIL, message=line, details=done.stderr)

            case, verdict = judged_case("ruff-format", relpath, [finding], baseline, fail)
        else:
            diff = diffs.get(relpath, "")
            hint = shlex.join(["ruff", "format", *options, relpath])
            case, verdict = judged_case(
                "ruff-format",
                relpath,
                diff_findings("ruff-format", relpath, diff),
                baseline,
                lambda new, d=diff, h=hint, r=relpath: unformatted_case("ruff-format", r, d, new, h, verb=""),
            )
        cases.append(case)
        verdicts[relpath] = verdict
    if done.returncode not in (0, 1) and not any(c.outcome is Outcome.FAIL for c in cases) and not errors:
        return Judged(cases=_tool_broke(files, "ruff format", done))
    return Judged(cases=cases, verdicts=verdicts)


def _batch_suite(
    name: str,
    tool: str,
    files: tuple[str, ...],
    make_cases: Callable[[], Judged],
    progress: Progress | None,
    baseline: Baseline,
    excluded: tuple[Case, ...] = (),
) -> Checked:
    if progress:
        progress.started(name, f"{len(files)} file(s)")
    start = time.monotonic()
    judged = make_cases() if files else Judged(cases=[], verdicts={})
    seconds = time.monotonic() - start
    cases = [*judged.cases, *excluded]
    suite = Suite(name=name, cases=cases, properties={"tool": tool, "files": str(len(cases))}, seconds=seconds)
    if judged.verdicts is not None:
        hold_up(suite, baseline, name.removeprefix("lint."), judged.verdicts)
    if progress:
        progress.finished(suite, seconds)
    return Checked(tool=name.removeprefix("lint."), suite=suite, verdicts=judged.verdicts)


def _skipped(name: str, files: tuple[str, ...], reason: str, tool: str, progress: Progress | None) -> Checked:
    cases = [Case(name=relpath, outcome=Outcome.SKIP, message=reason, file=relpath) for relpath in files]
    suite = Suite(name=name, cases=cases, properties={"tool": tool, "files": str(len(cases))}, seconds=0.0)
    if progress:
        progress.finished(suite, 0.0)
    return Checked(tool=name.removeprefix("lint."), suite=suite, verdicts=None)


LINTERS = ("shellcheck", "ruff-check", "ruff-format")


def lint_suite_count(files: SourceFiles, style: Style | None = None) -> int:
    style = style or Style()
    shell = style.fileset("shellcheck").select(files.shell)
    python = [tool for tool in ("ruff-check", "ruff-format") if style.fileset(tool).select(files.python)]
    return (1 if shell else 0) + len(python)


RUFF_EXCLUDED = "excluded by the project's ruff configuration (exclude / extend-exclude)"


def check_lint(
    root: Path,
    *,
    progress: Progress | None = None,
    files: SourceFiles | None = None,
    style: Style | None = None,
    baseline: Baseline | None = None,
    tools: tuple[str, ...] = LINTERS,
    requirements: Requirements | None = None,
) -> list[Checked]:
    """shellcheck on the shell scripts ``style`` selects, ruff check and ruff
    format --diff on the Python files of the project at ``root``: one suite
    per tool, with its verdicts per file (none for a tool that did not run).
    A tool with no files to look at gives no suite; ``tools`` narrows it to
    some linters; a missing one is skipped or, where ``requirements`` require
    it, failed.  Findings ``baseline`` knows are reported skipped; only new
    ones fail."""
    files = files or discover(root)
    style = style or Style()
    baseline = baseline or Baseline()
    requirements = requirements or Requirements()
    checked = []
    shell = style.fileset("shellcheck").select(files.shell)
    if shell and "shellcheck" in tools:
        checked.append(_shellcheck_suite(root, shell, style, baseline, progress, requirements))
    for tool, make in (("ruff-check", ruff_check_cases), ("ruff-format", ruff_format_cases)):
        python = style.fileset(tool).select(files.python)
        if python and tool in tools:
            checked.append(_ruff_suite(root, tool, python, make, style, baseline, progress, requirements))
    return checked


def run_lint(root: Path, **options: Any) -> list[Suite]:
    """check_lint's suites (the same options), without the verdicts."""
    return [c.suite for c in check_lint(root, **options)]


def _missing(
    name: str, program: str, files: tuple[str, ...], requirements: Requirements, progress: Progress | None
) -> Checked:
    """A linter this host lacks: skipped, or failed where ``requirements`` require it; no verdicts."""
    suite = missing_suite(name, program, files, requirements, progress)
    return Checked(tool=name.removeprefix("lint."), suite=suite, verdicts=None)


def _shellcheck_suite(
    root: Path,
    shell: tuple[str, ...],
    style: Style,
    baseline: Baseline,
    progress: Progress | None,
    requirements: Requirements,
) -> Checked:
    if style.skip.get("shellcheck"):
        return _skipped("lint.shellcheck", shell, style.skip["shellcheck"], "skipped", progress)
    shellcheck = find_tool("shellcheck")
    if shellcheck is None:
        return _missing("lint.shellcheck", "shellcheck", shell, requirements, progress)
    return _batch_suite(
        "lint.shellcheck",
        shellcheck,
        shell,
        lambda: shellcheck_cases(
            shellcheck,
            root,
            shell,
            severity=style.shellcheck_severity,
            options=style.options_of("shellcheck"),
            baseline=baseline,
        ),
        progress,
        baseline,
    )


def _ruff_suite(
    root: Path,
    tool: str,
    python: tuple[str, ...],
    make: Callable[..., Judged],
    style: Style,
    baseline: Baseline,
    progress: Progress | None,
    requirements: Requirements,
) -> Checked:
    name = f"lint.{tool}"
    if style.skip.get(tool):
        return _skipped(name, python, style.skip[tool], "skipped", progress)
    ruff = find_tool("ruff")
    if ruff is None:
        return _missing(name, "ruff", python, requirements, progress)
    taken = ruff_files(ruff, root, python)
    taken = python if taken is None else taken
    excluded = tuple(
        Case(name=p, outcome=Outcome.SKIP, message=RUFF_EXCLUDED, file=p) for p in python if p not in taken
    )
    options = style.options_of(tool)
    return _batch_suite(
        name,
        ruff,
        taken,
        lambda: make(ruff, root, taken, options=options, baseline=baseline),
        progress,
        baseline,
        excluded,
    )
