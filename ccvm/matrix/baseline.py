"""matrix/baseline.yaml: the findings a project had when it adopted ccvm.

``ccvm init`` records every finding fmt and lint report at adoption;
from then on those findings are known (reported skipped, with the reason)
and only new ones fail.  ``ccvm baseline --prune`` drops the ones that are
gone, ``ccvm baseline --record`` takes in the present ones; nothing else
writes it (the model: detekt's baseline, PHPStan's, RuboCop's todo file).

    version: 1
    findings:
      - tool: shellcheck           # shfmt, shellcheck, nixfmt, ruff-check, ruff-format
        file: bin/run.sh           # relative to the project root
        rule: SC2086               # the tool's rule; unformatted or parse-error for a formatter
        setting: ".shellcheckrc"   # the project's own setting it breaks (absent: the tool's defaults)
        count: 2
        fingerprints: [3f2a9c1e0b7d, 3f2a9c1e0b7d]

A fingerprint is the first 12 hex digits of sha256 over the rule and the
offending line's text with its whitespace collapsed: moving code up or
down, or re-indenting it, leaves it known; a second, identical finding
counts twice (a repeated fingerprint)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ccvm.errors import ConfigError
from ccvm.matrix.style import TOOLS
from ccvm.matrix.yamlsrc import Mapping, Sequence, expect_mapping, expect_sequence, load_yaml

BASELINE_FILE = "baseline.yaml"
VERSION = 1
_FINGERPRINT = re.compile(r"[0-9a-f]{12}")
_KEYS = ["tool", "file", "rule", "setting", "count", "fingerprints"]
HEADER = """\
# The findings this project had when it adopted ccvm, known from then on: `ccvm fmt` and `ccvm lint`
# report them skipped (with the reason) and fail on any new finding. Written by `ccvm init`;
# `ccvm baseline --prune` drops the fixed ones, and only `ccvm baseline --record` ever adds.
# A fingerprint hashes the rule and the offending line's text, so moved code stays known.
# See ccvm's docs, Static checks (docs/src/static-checks.md#the-baseline-matrixbaselineyaml)."""


@dataclass(frozen=True, kw_only=True)
class Entry:
    tool: str
    file: str
    rule: str
    fingerprints: tuple[str, ...]
    setting: str = ""  # the project's own setting these findings break; "" = the tool's defaults
    line: int = 0  # where in baseline.yaml, for messages


@dataclass(frozen=True, kw_only=True)
class Baseline:
    entries: tuple[Entry, ...] = ()
    path: Path | None = None  # the file it was read from; None when there is none

    def expected(self, tool: str, relpath: str) -> dict[tuple[str, str], int]:
        """(rule, fingerprint) -> how many such findings are known in that file for that tool."""
        counts: dict[tuple[str, str], int] = {}
        for entry in self.entries:
            if entry.tool == tool and entry.file == relpath:
                for fingerprint in entry.fingerprints:
                    counts[(entry.rule, fingerprint)] = counts.get((entry.rule, fingerprint), 0) + 1
        return counts

    def files(self, tool: str) -> tuple[str, ...]:
        return tuple(sorted({entry.file for entry in self.entries if entry.tool == tool}))

    def count(self, tool: str | None = None) -> int:
        return sum(len(e.fingerprints) for e in self.entries if tool is None or e.tool == tool)


def _text(doc: Mapping, key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise doc.error(key if key in doc else None, f"{where}: {key} must be a non-empty string")
    return value


def _entry(value: object, items: Sequence, index: int) -> Entry:
    where = f"finding {index + 1}"
    doc = expect_mapping(value, items.path, items.line_of(index), where)
    doc.reject_unknown_keys(_KEYS, f"{where} of {BASELINE_FILE}")
    tool = _text(doc, "tool", where)
    if tool not in TOOLS:
        raise doc.error("tool", f"{where}: tool {tool!r} is not one of {', '.join(TOOLS)}")
    relpath = _text(doc, "file", where)
    if relpath.startswith("/") or ".." in PurePosixPath(relpath).parts:
        raise doc.error("file", f"{where}: file {relpath!r} must be relative to the project root, inside it")
    rule = _text(doc, "rule", where)
    setting = doc.get("setting", "")
    if not isinstance(setting, str):
        raise doc.error("setting", f"{where}: setting must be a string (where the project's own setting is)")
    if "fingerprints" not in doc:
        raise doc.error(None, f"{where}: fingerprints is missing")
    prints = expect_sequence(doc["fingerprints"], doc.path, doc.line_of("fingerprints"), "fingerprints")
    for number, item in enumerate(prints):
        if not isinstance(item, str) or not _FINGERPRINT.fullmatch(item):
            raise ConfigError(
                prints.path,
                prints.line_of(number),
                f"{where}: fingerprint {item!r} is not 12 lowercase hex digits; "
                "run `ccvm baseline --record` to write the baseline again",
            )
    if not prints:
        raise doc.error("fingerprints", f"{where}: fingerprints is empty; drop the finding")
    count = doc.get("count", len(prints))
    if isinstance(count, bool) or not isinstance(count, int) or count != len(prints):
        raise doc.error("count", f"{where}: count {count!r} does not match its {len(prints)} fingerprint(s)")
    return Entry(
        tool=tool, file=relpath, rule=rule, fingerprints=tuple(prints), setting=setting, line=doc.line_of("tool")
    )


def load_baseline(matrix_root: Path) -> Baseline:
    """matrix/baseline.yaml, or an empty baseline when there is none; ConfigError (file:line) when malformed."""
    path = matrix_root / BASELINE_FILE
    if not path.is_file():
        return Baseline()
    doc = expect_mapping(load_yaml(path), path, 1, BASELINE_FILE)
    doc.reject_unknown_keys(["version", "findings"], BASELINE_FILE)
    if doc.get("version") != VERSION:
        raise doc.error("version" if "version" in doc else None, f"version must be {VERSION}")
    items = expect_sequence(doc.get("findings", Sequence()), path, doc.line_of("findings"), "findings")
    if not hasattr(items, "path"):
        return Baseline(path=path)
    return Baseline(entries=tuple(_entry(value, items, index) for index, value in enumerate(items)), path=path)


def _flow(words: tuple[str, ...], indent: str, per_line: int = 8) -> str:
    if len(words) <= per_line:
        return json.dumps(list(words))
    rows = [", ".join(json.dumps(w) for w in words[i : i + per_line]) for i in range(0, len(words), per_line)]
    return "[\n" + ",\n".join(f"{indent}  {row}" for row in rows) + f"\n{indent}]"


def dump_baseline(entries: list[Entry] | tuple[Entry, ...]) -> str:
    """The file's text: entries sorted by tool, file and rule; a finding list a person can read."""
    lines = [HEADER, f"version: {VERSION}"]
    ordered = sorted(entries, key=lambda e: (TOOLS.index(e.tool), e.file, e.rule, e.setting))
    if not ordered:
        return "\n".join([*lines, "findings: []"]) + "\n"
    lines.append("findings:")
    for entry in ordered:
        lines.append(f"  - tool: {json.dumps(entry.tool)}")
        lines.append(f"    file: {json.dumps(entry.file)}")
        lines.append(f"    rule: {json.dumps(entry.rule)}")
        if entry.setting:
            lines.append(f"    setting: {json.dumps(entry.setting)}")
        lines.append(f"    count: {len(entry.fingerprints)}")
        lines.append(f"    fingerprints: {_flow(tuple(sorted(entry.fingerprints)), '    ')}")
    return "\n".join(lines) + "\n"
