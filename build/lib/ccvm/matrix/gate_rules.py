"""The definition of done, read from matrix/gate.yaml: which checks exist,
how each runs and how a person reproduces it, and which changed paths
require which checks.

Path globs follow .gitignore conventions, matched against paths relative
to the repository root, always with ``/``:

* ``*`` matches any run of characters except ``/``; ``?`` one such
  character; ``[abc]``, ``[a-z]`` and ``[!abc]`` a character class;
  ``\\x`` the character x itself;
* ``**`` as a whole segment matches any number of directories:
  ``docs/**`` is everything under docs/, ``**/x.py`` any x.py,
  ``a/**/b`` is a/b, a/x/b, a/x/y/b ...;
* a glob with no ``/`` (``*.md``) matches a name at any depth;
  one with a ``/`` at its start or in its middle is anchored at the root;
* a trailing ``/`` means everything under such a directory: ``build/``
  is any directory named build, ``src/build/`` only the one at the root;
* a glob that matches a directory matches everything in it: ``nix``
  covers nix/default.nix;
* a leading ``!`` (negation) and an unclosed ``[`` are errors.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ccvm.errors import ConfigError
from ccvm.matrix.axes import suggestion
from ccvm.matrix.limits import MAX_TIMEOUT_S
from ccvm.matrix.yamlsrc import Mapping, Sequence, expect_mapping, expect_sequence

DEFAULT_BASE = "main"
DEFAULT_TIMEOUT_S = 1800.0
TTY_ATTESTATION = "tty-attestation"  # the requirement a person meets with `ccvm attest tty`
_CHECK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True, kw_only=True)
class PathGlob:
    text: str
    regex: re.Pattern[str] = field(compare=False, repr=False)

    def matches(self, path: str) -> bool:
        """The path, or a directory it is in, matches (as in .gitignore: ``build`` covers build/x.o)."""
        parts = path.split("/")
        return any(self.regex.fullmatch("/".join(parts[:end])) for end in range(len(parts), 0, -1))


@dataclass(frozen=True, kw_only=True)
class CheckDef:
    name: str
    run: tuple[str, ...]  # argv; a leading "ccvm" or "python" is resolved when run
    reproduce: str  # what a person types to see the same failure
    timeout_s: float = DEFAULT_TIMEOUT_S
    junit: str = ""  # a JUnit file the check writes; any skipped case there makes the check skipped


@dataclass(frozen=True, kw_only=True)
class Rule:
    paths: tuple[PathGlob, ...]
    require: tuple[str, ...]

    def matches(self, path: str) -> bool:
        return any(glob.matches(path) for glob in self.paths)


@dataclass(frozen=True, kw_only=True)
class GateRules:
    base: str = DEFAULT_BASE
    checks: tuple[CheckDef, ...] = ()
    rules: tuple[Rule, ...] = ()
    otherwise: tuple[str, ...] = ()  # required for a changed path that no rule matches
    terminal: tuple[PathGlob, ...] = ()  # paths whose change needs a human tty attestation

    def check(self, name: str) -> CheckDef:
        return next(check for check in self.checks if check.name == name)


# --- globs -------------------------------------------------------------------------------------------------------


def _class_regex(body: str) -> str:
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    chars = "".join(c if c == "-" else re.escape(c) for c in body if c != "/")
    return f"[^/{chars}]" if negate else f"[{chars}]"


def _segment_regex(segment: str) -> str:
    out, i = [], 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1  # "a**b" inside a segment is the same as "a*b"
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and i + 1 < len(segment):
            i += 1
            out.append(re.escape(segment[i]))
        elif char == "[":
            # "]" right after "[" (or "[!") belongs to the class
            start = i + 2 if segment[i + 1 : i + 2] in ("!", "^") else i + 1
            end = segment.find("]", start + 1)
            if end == -1:
                raise ValueError(f"path glob segment {segment!r} opens a [ class it never closes; write \\[ for a [")
            out.append(_class_regex(segment[i + 1 : end]))
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def compile_glob(text: str) -> PathGlob:
    """A gitignore-style path glob (see the module docstring); ValueError when malformed."""
    pattern = text.strip()
    if not pattern or pattern == "/":
        raise ValueError("a path glob must not be empty")
    if pattern.startswith("!"):
        raise ValueError(f"path glob {text!r}: negation is not supported; list the paths you mean (\\! for a !)")
    anchored = "/" in pattern.rstrip("/")  # a trailing / alone does not anchor
    if pattern.endswith("/"):
        pattern += "**"
    pattern = pattern.removeprefix("/")
    segments = pattern.split("/")
    if any(segment == "" for segment in segments):
        raise ValueError(f"path glob {text!r} has an empty segment ('//')")
    parts = [] if anchored else ["(?:.*/)?"]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append((".*" if index == 0 else ".+") if last else "(?:.*/)?")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    try:
        regex = re.compile("".join(parts), re.DOTALL)
    except re.error as exc:  # e.g. a reversed range [z-a]
        raise ValueError(f"path glob {text!r} is not a valid glob: {exc.msg}") from None
    return PathGlob(text=text, regex=regex)


# --- gate.yaml ----------------------------------------------------------------------------------------------------

_CHECK_KEYS = ["run", "reproduce", "timeout", "junit"]


def _words(value: object, parent: Mapping, key: str) -> tuple[str, ...]:
    items = expect_sequence(value, parent.path, parent.line_of(key), key)
    words = []
    for index, item in enumerate(items):
        if item is None or isinstance(item, bool | Mapping | Sequence):
            raise ConfigError(items.path, items.line_of(index), f"every word of {key} must be a plain string")
        words.append(str(item))
    if not words:
        raise parent.error(key, f"{key} is empty")
    return tuple(words)


def _parse_check(name: str, value: object, checks: Mapping) -> CheckDef:
    if not _CHECK_NAME.fullmatch(name):
        raise checks.error(name, f"check name {name!r} may use only letters, digits, '.', '_' and '-'")
    if name == TTY_ATTESTATION:
        raise checks.error(name, f"{TTY_ATTESTATION!r} is reserved for the human attestation; pick another name")
    doc = expect_mapping(value, checks.path, checks.line_of(name), f"check {name!r}")
    doc.reject_unknown_keys(_CHECK_KEYS, f"check {name!r}")
    for key in ("run", "reproduce"):
        if key not in doc:
            raise doc.error(None, f"check {name!r} is missing {key!r}")
    reproduce = doc["reproduce"]
    if not isinstance(reproduce, str) or not reproduce.strip():
        raise doc.error("reproduce", "reproduce must be the command a person runs, as one string")
    timeout = doc.get("timeout", DEFAULT_TIMEOUT_S)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or not 0 < timeout <= MAX_TIMEOUT_S
    ):
        raise doc.error("timeout", f"timeout must be a positive number of seconds, at most {MAX_TIMEOUT_S:g} (7 days)")
    junit = doc.get("junit", "")
    if not isinstance(junit, str):
        raise doc.error("junit", "junit must be a path relative to the repository root")
    return CheckDef(
        name=name,
        run=_words(doc["run"], doc, "run"),
        reproduce=reproduce.strip(),
        timeout_s=float(timeout),
        junit=junit,
    )


def _globs(value: object, parent: Mapping, key: str) -> tuple[PathGlob, ...]:
    globs = []
    for index, text in enumerate(_words(value, parent, key)):
        try:
            globs.append(compile_glob(text))
        except ValueError as exc:
            raise ConfigError(parent.path, parent[key].line_of(index), str(exc)) from None
    return tuple(globs)


def _check_names(value: object, parent: Mapping, key: str, known: list[str]) -> tuple[str, ...]:
    names = _words(value, parent, key)
    for index, name in enumerate(names):
        if name not in known:
            raise ConfigError(
                parent.path,
                parent[key].line_of(index),
                f"unknown check {name!r}{suggestion(name, known)}; checks: {', '.join(known)}",
            )
    return names


def _parse_rule(value: object, rules: Sequence, index: int, known: list[str]) -> Rule:
    doc = expect_mapping(value, rules.path, rules.line_of(index), "each rule")
    doc.reject_unknown_keys(["paths", "require"], "a rule")
    for key in ("paths", "require"):
        if key not in doc:
            raise doc.error(None, f"rule is missing {key!r}")
    return Rule(paths=_globs(doc["paths"], doc, "paths"), require=_check_names(doc["require"], doc, "require", known))


def parse_gate(doc: Mapping) -> GateRules:
    doc.reject_unknown_keys(["base", "checks", "rules", "otherwise", "terminal"], "gate.yaml")
    base = doc.get("base", DEFAULT_BASE)
    if not isinstance(base, str) or not base.strip():
        raise doc.error("base", "base must name a branch or ref, e.g. main")
    checks_doc = expect_mapping(doc.get("checks"), doc.path, doc.line_of("checks"), "checks")
    checks = tuple(_parse_check(name, value, checks_doc) for name, value in checks_doc.items())
    known = [check.name for check in checks]
    rules_doc = expect_sequence(doc.get("rules"), doc.path, doc.line_of("rules"), "rules")
    rules = tuple(_parse_rule(value, rules_doc, index, known) for index, value in enumerate(rules_doc))
    if not rules:
        raise doc.error("rules", "rules is empty; map at least one path glob to the checks it requires")
    otherwise = _check_names(doc["otherwise"], doc, "otherwise", known) if "otherwise" in doc else ()
    terminal = _globs(doc["terminal"], doc, "terminal") if "terminal" in doc else ()
    return GateRules(base=base.strip(), checks=checks, rules=rules, otherwise=otherwise, terminal=terminal)
