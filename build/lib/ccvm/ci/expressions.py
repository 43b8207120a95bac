"""A small evaluator of GitHub Actions expressions, for ``ccvm rehearse``.

It knows literals (null, true, false, numbers, 'strings'), property access
(``matrix.cell``, ``env['X']``, ``steps.id.outputs.name``), the operators
``! == != < <= > >= && ||`` and parentheses, the status functions
``success() failure() always() cancelled()`` and the functions
``contains startsWith endsWith format join toJSON fromJSON hashFiles``.
Comparison and truth follow GitHub's rules: strings compare without case,
mixed types compare as numbers, ``&&``/``||`` give an operand back.

Whatever it does not know (an unknown context such as ``needs``, an
unknown function, a syntax it does not parse) raises ``Unevaluable``: the
rehearsal reports it instead of guessing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"\s*(?:(?P<number>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))"
    r"|(?P<string>'(?:[^']|'')*')"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\].,*])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
_EMBEDDED = re.compile(r"\$\{\{(.*?)\}\}", re.S)
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")


class Unevaluable(Exception):
    """An expression this evaluator cannot evaluate; the message says which part."""


@dataclass(frozen=True, kw_only=True)
class Status:
    """What the status functions see: did an earlier step fail, was the job cancelled."""

    failed: bool = False
    cancelled: bool = False


@dataclass(frozen=True, kw_only=True)
class Context:
    contexts: Mapping[str, object]  # matrix, env, github, runner, steps, ...
    status: Status = field(default_factory=Status)
    hash_files: Callable[[list[str]], str] | None = None


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise Unevaluable(f"cannot read {text[pos:].strip()!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


# -- GitHub's coercions ---------------------------------------------------------


def truthy(value: object) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return not (value == 0 or math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def to_number(value: object) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan


def to_string(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2)
    return str(value)


def _equal(left: object, right: object) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    if type(left) is type(right) and isinstance(left, (dict, list)):
        return left is right
    return to_number(left) == to_number(right)


def _less(left: object, right: object) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() < right.casefold()
    return to_number(left) < to_number(right)


COMPARE = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<": _less,
    ">": lambda a, b: _less(b, a),
    "<=": lambda a, b: not _less(b, a),
    ">=": lambda a, b: not _less(a, b),
}


# -- parsing into thunks (so && and || short-circuit as GitHub's do) ---------------

Thunk = Callable[[], object]


class _Parser:
    def __init__(self, text: str, context: Context) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.context = context

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise Unevaluable(f"{self.text.strip()!r}: expected {value or 'more'} at token {self.pos + 1}")
        self.pos += 1
        return token

    def at(self, *values: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "op" and token[1] in values

    def parse(self) -> Thunk:
        thunk = self.or_expr()
        if self.peek() is not None:
            raise Unevaluable(f"{self.text.strip()!r}: unexpected {self.peek()[1]!r}")
        return thunk

    def or_expr(self) -> Thunk:
        left = self.and_expr()
        while self.at("||"):
            self.take()
            right = self.and_expr()
            left = (lambda a, b: lambda: v if truthy(v := a()) else b())(left, right)
        return left

    def and_expr(self) -> Thunk:
        left = self.comparison()
        while self.at("&&"):
            self.take()
            right = self.comparison()
            left = (lambda a, b: lambda: b() if truthy(v := a()) else v)(left, right)
        return left

    def comparison(self) -> Thunk:
        left = self.unary()
        while self.at(*COMPARE):
            compare = COMPARE[self.take()[1]]
            right = self.unary()
            left = (lambda a, b, f: lambda: f(a(), b()))(left, right, compare)
        return left

    def unary(self) -> Thunk:
        if self.at("!"):
            self.take()
            inner = self.unary()
            return lambda: not truthy(inner())
        return self.postfix(self.primary())

    def primary(self) -> Thunk:
        kind, value = self.take()
        if kind == "number":
            number = float(int(value, 16)) if value.lower().startswith(("0x", "-0x")) else float(value)
            return lambda: number
        if kind == "string":
            text = value[1:-1].replace("''", "'")
            return lambda: text
        if kind == "op" and value == "(":
            inner = self.or_expr()
            self.take(")")
            return inner
        if kind == "name":
            return self.name(value)
        raise Unevaluable(f"{self.text.strip()!r}: unexpected {value!r}")

    def name(self, word: str) -> Thunk:
        literals = {"true": True, "false": False, "null": None}
        if word in literals:
            return lambda: literals[word]
        if self.at("("):
            return self.call(word)
        contexts = self.context.contexts
        if word not in contexts:
            message = f"{self.text.strip()!r}: the {word!r} context is not known to a rehearsal"

            def unknown() -> object:  # raised only when reached: `false && needs.x` is false
                raise Unevaluable(message)

            return unknown
        return lambda: contexts[word]

    def call(self, function: str) -> Thunk:
        self.take("(")
        args: list[Thunk] = []
        while not self.at(")"):
            args.append(self.or_expr())
            if not self.at(")"):
                self.take(",")
        self.take(")")
        implementation = _function(function, self.context, self.text)
        return lambda: implementation([arg() for arg in args])

    def postfix(self, thunk: Thunk) -> Thunk:
        while self.at(".", "["):
            if self.take()[1] == ".":
                kind, key = self.take()
                if kind != "name" and key != "*":
                    raise Unevaluable(f"{self.text.strip()!r}: bad property {key!r}")
                thunk = (lambda base, k: lambda: _index(base(), k))(thunk, key)
            else:
                index = self.or_expr()
                self.take("]")
                thunk = (lambda base, i: lambda: _index(base(), i()))(thunk, index)
        return thunk


def _index(base: object, key: object) -> object:
    if key == "*":
        raise Unevaluable("object filters (.*) are not supported by a rehearsal")
    if isinstance(base, Mapping):
        if isinstance(key, str):
            lowered = {str(k).casefold(): v for k, v in base.items()}
            return lowered.get(key.casefold())
        return None
    if isinstance(base, list) and isinstance(key, (int, float)) and not isinstance(key, bool):
        index = int(key)
        return base[index] if 0 <= index < len(base) else None
    return None


def _format(args: list[object]) -> str:
    if not args:
        raise Unevaluable("format() needs a format string")
    template, values = to_string(args[0]), [to_string(a) for a in args[1:]]

    def replace(match: re.Match) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        index = int(match.group(1))
        if index >= len(values):
            raise Unevaluable(f"format(): no argument {index}")
        return values[index]

    return re.sub(r"\{\{|\}\}|\{(\d+)\}", replace, template)


def _contains(args: list[object]) -> bool:
    haystack, needle = args[0], args[1]
    if isinstance(haystack, list):
        return any(_equal(item, needle) for item in haystack)
    return to_string(needle).casefold() in to_string(haystack).casefold()


def _function(name: str, context: Context, text: str) -> Callable[[list[object]], object]:
    status = context.status
    known: dict[str, Callable[[list[object]], object]] = {
        "success": lambda _: not status.failed and not status.cancelled,
        "failure": lambda _: status.failed,
        "always": lambda _: True,
        "cancelled": lambda _: status.cancelled,
        "contains": _contains,
        "startswith": lambda a: to_string(a[0]).casefold().startswith(to_string(a[1]).casefold()),
        "endswith": lambda a: to_string(a[0]).casefold().endswith(to_string(a[1]).casefold()),
        "format": _format,
        "join": lambda a: (
            (to_string(a[1]) if len(a) > 1 else ",").join(map(to_string, a[0]))
            if isinstance(a[0], list)
            else to_string(a[0])
        ),
        "tojson": lambda a: json.dumps(a[0], indent=2),
        "fromjson": lambda a: json.loads(to_string(a[0])),
    }
    if context.hash_files is not None:
        known["hashfiles"] = lambda a: context.hash_files([to_string(p) for p in a])  # type: ignore[misc]
    if name.casefold() not in known:
        raise Unevaluable(f"{text.strip()!r}: the function {name}() is not known to a rehearsal")
    return known[name.casefold()]


# -- the entry points ---------------------------------------------------------------


def evaluate(text: str, context: Context) -> object:
    """The value of one expression (the text inside ${{ }}, or a bare if: condition)."""
    try:
        return _Parser(text, context).parse()()
    except Unevaluable:
        raise
    except (TypeError, ValueError, IndexError, RecursionError) as exc:
        raise Unevaluable(f"{text.strip()!r}: {exc}") from None


def uses_status_function(text: str) -> bool:
    return any(kind == "name" and value.casefold() in STATUS_FUNCTIONS for kind, value in tokenize(text))


def condition(raw: object, context: Context) -> bool:
    """An if: as GitHub reads it: ${{ }} optional, and success() && (it) unless it names a status function."""
    if raw is None:
        return truthy(evaluate("success()", context))
    if isinstance(raw, bool):
        return raw and truthy(evaluate("success()", context))
    text = str(raw).strip()
    whole = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.S)
    if whole:
        text = whole.group(1)
    if not uses_status_function(text):
        text = f"success() && ({text})"
    return truthy(evaluate(text, context))


def substitute(text: str, context: Context) -> str:
    """A string with every ${{ expression }} in it replaced by its value."""
    return _EMBEDDED.sub(lambda match: to_string(evaluate(match.group(1), context)), text)
