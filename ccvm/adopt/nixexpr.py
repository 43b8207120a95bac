"""The one parser of the Nix language in ccvm.

``ccvm init`` reads Nix files without evaluating them with Nix: this module
turns the text into tokens and a syntax tree, which
``ccvm.adopt.nixeval`` evaluates as far as the text allows (a flake's
outputs, when Nix cannot evaluate them here), ``ccvm.adopt.nixattrs`` walks
for attribute bindings (treefmt-nix settings) and ``ccvm.adopt.scripts``
scans for path literals.  It follows the Nix grammar (strings with
interpolation, indented strings with their indentation stripped, paths,
URIs, ``let``, ``rec``, ``with``, lambdas with formals, the operators and
their precedence); what it cannot parse is a ``NixSyntaxError`` naming the
line.  Every node keeps where it starts and ends in the text, from its first
token to its last (parentheses included); ``line_numbers`` turns those
offsets into lines.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field


class NixSyntaxError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


# -- tokens -----------------------------------------------------------------

KEYWORDS = frozenset({"let", "in", "rec", "with", "if", "then", "else", "assert", "inherit"})
_PATH_CHAR = r"[A-Za-z0-9._\-+]"
_PATH = re.compile(rf"(?:~|{_PATH_CHAR}*)(?:/{_PATH_CHAR}+)+/?")
_SPATH = re.compile(rf"<{_PATH_CHAR}+(?:/{_PATH_CHAR}+)*>")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[A-Za-z0-9%/?:@&=+$,\-_.!~*']+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_'\-]*")
_NUMBER = re.compile(r"(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?")
_OPERATORS = ("...", "//", "++", "==", "!=", "<=", ">=", "&&", "||", "->", "|>", "<|")
_SINGLE = set(".,;:=?@()[]+-*/<>!{}")


@dataclass(frozen=True)
class Token:
    kind: str  # ID, NUM, PATH, SPATH, URI, OP, STR_OPEN, STR_TEXT, STR_CLOSE, INTERP, INTERP_END, EOF
    text: str
    start: int
    end: int


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[Token] = []

    def line(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def emit(self, kind: str, text: str, start: int, end: int) -> None:
        self.tokens.append(Token(kind, text, start, end))

    def run(self) -> list[Token]:
        self.code(interpolation=False)
        self.emit("EOF", "", len(self.text), len(self.text))
        return self.tokens

    def skip_space(self) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r\n":
                self.pos += 1
            elif char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end == -1 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end == -1:
                    raise NixSyntaxError("unterminated comment", self.line(self.pos))
                self.pos = end + 2
            else:
                return

    def code(self, *, interpolation: bool) -> None:
        """Tokens up to the end of the text, or (inside ``${``) up to its closing brace."""
        depth = 0
        text = self.text
        while True:
            self.skip_space()
            if self.pos >= len(text):
                if interpolation:
                    raise NixSyntaxError("unterminated ${", self.line(self.pos))
                return
            start = self.pos
            char = text[start]
            if char == '"':
                self.pos += 1
                self.emit("STR_OPEN", '"', start, self.pos)
                self.string()
            elif text.startswith("''", start):
                self.pos += 2
                self.emit("STR_OPEN", "''", start, self.pos)
                self.indented()
            elif text.startswith("${", start):
                self.pos += 2
                self.emit("INTERP", "${", start, self.pos)
                self.code(interpolation=True)
            elif char == "{":
                depth += 1
                self.pos += 1
                self.emit("OP", "{", start, self.pos)
            elif char == "}":
                self.pos += 1
                if interpolation and depth == 0:
                    self.emit("INTERP_END", "}", start, self.pos)
                    return
                depth -= 1
                self.emit("OP", "}", start, self.pos)
            else:
                self.atom(start)

    def atom(self, start: int) -> None:
        text = self.text
        for kind, pattern in (("URI", _URI), ("PATH", _PATH), ("SPATH", _SPATH)):
            found = pattern.match(text, start)
            if found:
                if kind == "PATH" and text.startswith("${", found.end()):
                    raise NixSyntaxError("a path with ${...} in it", self.line(start))
                self.pos = found.end()
                self.emit(kind, found.group(), start, self.pos)
                return
        for kind, pattern in (("NUM", _NUMBER), ("ID", _IDENT)):
            found = pattern.match(text, start)
            if found:
                self.pos = found.end()
                self.emit(kind, found.group(), start, self.pos)
                return
        for op in _OPERATORS:
            if text.startswith(op, start):
                self.pos = start + len(op)
                self.emit("OP", op, start, self.pos)
                return
        if text[start] in _SINGLE:
            self.pos = start + 1
            self.emit("OP", text[start], start, self.pos)
            return
        raise NixSyntaxError(f"unexpected {text[start]!r}", self.line(start))

    def _text(self, parts: list[str], start: int) -> None:
        if parts:
            self.emit("STR_TEXT", "".join(parts), start, self.pos)

    def string(self) -> None:
        text = self.text
        parts: list[str] = []
        begin = self.pos
        while self.pos < len(text):
            char = text[self.pos]
            if char == '"':
                self._text(parts, begin)
                self.emit("STR_CLOSE", '"', self.pos, self.pos + 1)
                self.pos += 1
                return
            if char == "\\" and self.pos + 1 < len(text):
                escaped = text[self.pos + 1]
                parts.append({"n": "\n", "t": "\t", "r": "\r"}.get(escaped, escaped))
                self.pos += 2
            elif text.startswith("${", self.pos):
                self._text(parts, begin)
                parts = []
                self.emit("INTERP", "${", self.pos, self.pos + 2)
                self.pos += 2
                self.code(interpolation=True)
                begin = self.pos
            elif text.startswith("$${", self.pos):
                parts.append("$${")
                self.pos += 3
            else:
                parts.append(char)
                self.pos += 1
        raise NixSyntaxError("unterminated string", self.line(begin))

    def indented(self) -> None:
        text = self.text
        parts: list[str] = []
        begin = self.pos
        while self.pos < len(text):
            if text.startswith("'''", self.pos):
                parts.append("''")
                self.pos += 3
            elif text.startswith("''$", self.pos):
                parts.append("$")
                self.pos += 3
            elif text.startswith("''\\", self.pos) and self.pos + 3 < len(text):
                escaped = text[self.pos + 3]
                parts.append({"n": "\n", "t": "\t", "r": "\r"}.get(escaped, escaped))
                self.pos += 4
            elif text.startswith("''", self.pos):
                self._text(parts, begin)
                self.emit("STR_CLOSE", "''", self.pos, self.pos + 2)
                self.pos += 2
                return
            elif text.startswith("${", self.pos):
                self._text(parts, begin)
                parts = []
                self.emit("INTERP", "${", self.pos, self.pos + 2)
                self.pos += 2
                self.code(interpolation=True)
                begin = self.pos
            elif text.startswith("$${", self.pos):
                parts.append("$${")
                self.pos += 3
            else:
                parts.append(text[self.pos])
                self.pos += 1
        raise NixSyntaxError("unterminated indented string", self.line(begin))


TOO_DEEP = "nested too deeply for ccvm to read"


def tokenize(text: str) -> list[Token]:
    lexer = _Lexer(text)
    try:
        return lexer.run()
    except RecursionError:  # ${ in strings in ${ ...
        raise NixSyntaxError(TOO_DEEP, lexer.line(lexer.pos)) from None


def line_numbers(text: str) -> Callable[[int], int]:
    """The line (from 1) of each offset in the text."""
    newlines = [found.start() for found in re.finditer("\n", text)]
    return lambda offset: bisect_left(newlines, offset) + 1


# -- the syntax tree ----------------------------------------------------------


@dataclass(eq=False)
class Node:
    start: int
    end: int


@dataclass(eq=False)
class Var(Node):
    name: str


@dataclass(eq=False)
class Literal(Node):
    value: object  # int, float


@dataclass(eq=False)
class Str(Node):
    parts: list[str | Node]  # text, and the expressions interpolated into it
    indented: bool = False

    @property
    def literal(self) -> str | None:
        return (
            "".join(p for p in self.parts if isinstance(p, str))
            if all(isinstance(p, str) for p in self.parts)
            else None
        )


@dataclass(eq=False)
class PathLit(Node):
    text: str  # ./foo, ../bar, /abs, ~/x, <nixpkgs>


@dataclass(eq=False)
class Uri(Node):
    text: str


@dataclass(eq=False)
class ListLit(Node):
    items: list[Node]


AttrName = str | Node  # a literal name, or an expression (``${e}``, an interpolated string)


@dataclass(eq=False)
class Binding:
    path: list[AttrName]
    value: Node
    start: int


@dataclass(eq=False)
class Inherit:
    source: Node | None  # inherit (source) names;
    names: list[AttrName]
    start: int


@dataclass(eq=False)
class AttrSet(Node):
    recursive: bool
    bindings: list[Binding] = field(default_factory=list)
    inherits: list[Inherit] = field(default_factory=list)


@dataclass(eq=False)
class Let(Node):
    bindings: list[Binding]
    inherits: list[Inherit]
    body: Node


@dataclass(eq=False)
class Formal:
    name: str
    default: Node | None


@dataclass(eq=False)
class Lambda(Node):
    param: str | None  # x: ..., or the name after @
    formals: list[Formal] | None  # { a, b ? 1, ... }: ...
    ellipsis: bool
    body: Node


@dataclass(eq=False)
class Apply(Node):
    fn: Node
    arg: Node


@dataclass(eq=False)
class Select(Node):
    expr: Node
    path: list[AttrName]
    default: Node | None


@dataclass(eq=False)
class HasAttr(Node):
    expr: Node
    path: list[AttrName]


@dataclass(eq=False)
class BinOp(Node):
    op: str
    left: Node
    right: Node


@dataclass(eq=False)
class UnOp(Node):
    op: str  # ! or -
    expr: Node


@dataclass(eq=False)
class If(Node):
    cond: Node
    then: Node
    otherwise: Node


@dataclass(eq=False)
class With(Node):
    scope: Node
    body: Node


@dataclass(eq=False)
class Assert(Node):
    cond: Node
    body: Node


_HOLE = "\0"  # where an indented string's ${...} sits while its indentation is stripped


def _strip_indentation(parts: list[str | Node]) -> list[str | Node]:
    """An indented string's parts as Nix reads them: a blank first line dropped, the least indentation of
    the lines that hold anything (an interpolation counts) cut from every line."""
    if any(isinstance(part, str) and _HOLE in part for part in parts):
        return parts
    lines = "".join(part if isinstance(part, str) else _HOLE for part in parts).split("\n")
    if lines and not lines[0].strip():
        lines = lines[1:]
    cut = min((len(line) - len(line.lstrip(" ")) for line in lines if line.strip()), default=0)
    pieces = "\n".join(line[cut:] for line in lines).split(_HOLE)
    nodes = [part for part in parts if not isinstance(part, str)]
    out: list[str | Node] = []
    for piece, node in zip(pieces, [*nodes, None], strict=True):
        out += [piece] if piece else []
        out += [node] if node is not None else []
    return out


# -- the parser -----------------------------------------------------------------

# Binary operators: precedence (higher binds tighter) and whether they group to the right.
_BINARY = {
    "|>": (0, False),
    "<|": (0, True),
    "->": (1, True),
    "||": (2, False),
    "&&": (3, False),
    "==": (4, False),
    "!=": (4, False),
    "<": (5, False),
    ">": (5, False),
    "<=": (5, False),
    ">=": (5, False),
    "//": (6, True),
    "+": (8, False),
    "-": (8, False),
    "*": (9, False),
    "/": (9, False),
    "++": (10, True),
}
_NOT_PRECEDENCE = 7
_HAS_ATTR_PRECEDENCE = 11
_NEGATE_PRECEDENCE = 12
_ATOM_START = frozenset({"ID", "NUM", "PATH", "SPATH", "URI", "STR_OPEN"})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    # token helpers
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def is_op(self, text: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "OP" and token.text == text

    def is_keyword(self, word: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "ID" and token.text == word

    def error(self, message: str, token: Token | None = None) -> NixSyntaxError:
        token = token or self.peek()
        return NixSyntaxError(message, self.text.count("\n", 0, token.start) + 1)

    def expect_op(self, text: str) -> Token:
        if not self.is_op(text):
            found = self.peek().text or "the end of the file"
            raise self.error(f"expected {text!r}, found {found!r}")
        return self.next()

    def expect_keyword(self, word: str) -> Token:
        if not self.is_keyword(word):
            raise self.error(f"expected {word!r}, found {self.peek().text or 'the end of the file'!r}")
        return self.next()

    # grammar
    def parse(self) -> Node:
        node = self.expr()
        if self.peek().kind != "EOF":
            raise self.error(f"unexpected {self.peek().text!r}")
        return node

    def expr(self) -> Node:
        token = self.peek()
        if token.kind == "ID" and token.text not in KEYWORDS:
            if self.is_op(":", 1):
                self.next()
                self.next()
                body = self.expr()
                return Lambda(token.start, self.peek(-1).end, token.text, None, False, body)
            if self.is_op("@", 1) and self.is_op("{", 2):
                self.next()
                self.next()
                return self.formals_lambda(token.start, token.text)
        if token.kind == "OP" and token.text == "{" and self.starts_formals():
            return self.formals_lambda(token.start, None)
        if self.is_keyword("let") and not self.is_op("{", 1):
            self.next()
            bindings, inherits = self.binds(until="in")
            self.expect_keyword("in")
            body = self.expr()
            return Let(token.start, self.peek(-1).end, bindings, inherits, body)
        if self.is_keyword("with"):
            self.next()
            scope = self.expr()
            self.expect_op(";")
            body = self.expr()
            return With(token.start, self.peek(-1).end, scope, body)
        if self.is_keyword("assert"):
            self.next()
            cond = self.expr()
            self.expect_op(";")
            body = self.expr()
            return Assert(token.start, self.peek(-1).end, cond, body)
        if self.is_keyword("if"):
            self.next()
            cond = self.expr()
            self.expect_keyword("then")
            then = self.expr()
            self.expect_keyword("else")
            otherwise = self.expr()
            return If(token.start, self.peek(-1).end, cond, then, otherwise)
        return self.binary(0)

    def starts_formals(self) -> bool:
        """At a ``{``: whether it opens a lambda's formals rather than an attribute set."""
        first, second = self.peek(1), self.peek(2)
        if first.kind == "OP" and first.text == "}":
            return self.is_op(":", 2) or self.is_op("@", 2)
        if first.kind == "OP" and first.text == "...":
            return True
        if first.kind == "ID" and first.text not in KEYWORDS:
            if second.kind == "OP" and second.text in (",", "?"):
                return True
            if second.kind == "OP" and second.text == "}":
                return self.is_op(":", 3) or self.is_op("@", 3)
        return False

    def formals_lambda(self, start: int, param: str | None) -> Lambda:
        self.expect_op("{")
        formals: list[Formal] = []
        ellipsis = False
        while not self.is_op("}"):
            if self.is_op("..."):
                self.next()
                ellipsis = True
            else:
                name = self.next()
                if name.kind != "ID":
                    raise self.error(f"expected a name in the function's arguments, found {name.text!r}", name)
                default = None
                if self.is_op("?"):
                    self.next()
                    default = self.expr()
                formals.append(Formal(name.text, default))
            if not self.is_op("}"):
                self.expect_op(",")
        self.expect_op("}")
        if param is None and self.is_op("@"):
            self.next()
            name = self.next()
            if name.kind != "ID":
                raise self.error("expected a name after @", name)
            param = name.text
        self.expect_op(":")
        body = self.expr()
        return Lambda(start, self.peek(-1).end, param, formals, ellipsis, body)

    def binary(self, minimum: int) -> Node:
        token = self.peek()
        if token.kind == "OP" and token.text == "!":
            self.next()
            operand = self.binary(_NOT_PRECEDENCE)
            left: Node = UnOp(token.start, self.peek(-1).end, "!", operand)
        elif token.kind == "OP" and token.text == "-":
            self.next()
            operand = self.binary(_NEGATE_PRECEDENCE)
            left = UnOp(token.start, self.peek(-1).end, "-", operand)
        else:
            left = self.application()
        while True:
            op = self.peek()
            if op.kind != "OP":
                return left
            if op.text == "?" and minimum <= _HAS_ATTR_PRECEDENCE:
                self.next()
                path = self.attrpath()
                left = HasAttr(token.start, self.peek(-1).end, left, path)
                continue
            if op.text not in _BINARY:
                return left
            precedence, right_assoc = _BINARY[op.text]
            if precedence < minimum:
                return left
            self.next()
            right = self.binary(precedence if right_assoc else precedence + 1)
            left = BinOp(token.start, self.peek(-1).end, op.text, left, right)

    def starts_atom(self) -> bool:
        token = self.peek()
        if token.kind == "ID":
            return token.text not in KEYWORDS or token.text in ("rec", "let") and self.is_op("{", 1)
        if token.kind == "OP":
            return token.text in ("(", "[", "{")
        return token.kind in _ATOM_START

    def application(self) -> Node:
        start = self.peek().start
        node = self.select()
        while self.starts_atom():
            arg = self.select()
            node = Apply(start, self.peek(-1).end, node, arg)
        return node

    def select(self) -> Node:
        start = self.peek().start
        node = self.atom()
        if self.is_op("."):
            self.next()
            path = self.attrpath()
            default = None
            if self.is_keyword("or"):
                self.next()
                default = self.select()
            return Select(start, self.peek(-1).end, node, path, default)
        return node

    def attrpath(self) -> list[AttrName]:
        path = [self.attr_name()]
        while self.is_op("."):
            self.next()
            path.append(self.attr_name())
        return path

    def attr_name(self) -> AttrName:
        token = self.peek()
        if token.kind == "ID":
            self.next()
            return token.text
        if token.kind == "STR_OPEN":
            string = self.string()
            return string.literal if string.literal is not None else string
        if token.kind == "INTERP":
            self.next()
            inner = self.expr()
            if self.peek().kind != "INTERP_END":
                raise self.error("expected } to close ${")
            self.next()
            return inner
        raise self.error(f"expected an attribute name, found {token.text or 'the end of the file'!r}")

    def string(self) -> Str:
        opening = self.next()
        parts: list[str | Node] = []
        while True:
            token = self.peek()
            if token.kind == "STR_TEXT":
                self.next()
                parts.append(token.text)
            elif token.kind == "INTERP":
                self.next()
                parts.append(self.expr())
                if self.peek().kind != "INTERP_END":
                    raise self.error("expected } to close ${")
                self.next()
            elif token.kind == "STR_CLOSE":
                self.next()
                indented = opening.text == "''"
                return Str(opening.start, token.end, _strip_indentation(parts) if indented else parts, indented)
            else:
                raise self.error("unterminated string", opening)

    def atom(self) -> Node:
        token = self.peek()
        if token.kind == "ID":
            if token.text == "rec" and self.is_op("{", 1):
                self.next()
                return self.attrset(token.start, recursive=True)
            if token.text == "let" and self.is_op("{", 1):  # the old `let { ...; body = ...; }`
                self.next()
                node = self.attrset(token.start, recursive=True)
                return Select(node.start, node.end, node, ["body"], None)
            if token.text in KEYWORDS:
                raise self.error(f"unexpected {token.text!r}")
            self.next()
            return Var(token.start, token.end, token.text)
        if token.kind == "NUM":
            self.next()
            value: object = float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
            return Literal(token.start, token.end, value)
        if token.kind in ("PATH", "SPATH"):
            self.next()
            return PathLit(token.start, token.end, token.text)
        if token.kind == "URI":
            self.next()
            return Uri(token.start, token.end, token.text)
        if token.kind == "STR_OPEN":
            return self.string()
        if token.kind == "OP" and token.text == "(":
            self.next()
            inner = self.expr()
            self.expect_op(")")
            return inner
        if token.kind == "OP" and token.text == "[":
            self.next()
            items = []
            while not self.is_op("]"):
                if self.peek().kind == "EOF":
                    raise self.error("unterminated list", token)
                items.append(self.select())
            end = self.next().end
            return ListLit(token.start, end, items)
        if token.kind == "OP" and token.text == "{":
            return self.attrset(token.start, recursive=False)
        raise self.error(f"unexpected {token.text or 'end of the file'!r}")

    def attrset(self, start: int, *, recursive: bool) -> AttrSet:
        self.expect_op("{")
        bindings, inherits = self.binds(until="}")
        end = self.expect_op("}").end
        return AttrSet(start, end, recursive, bindings, inherits)

    def binds(self, *, until: str) -> tuple[list[Binding], list[Inherit]]:
        bindings: list[Binding] = []
        inherits: list[Inherit] = []
        while not (self.is_op(until) if until == "}" else self.is_keyword(until)):
            token = self.peek()
            if token.kind == "EOF":
                raise self.error(f"expected {until!r} before the end of the file")
            if self.is_keyword("inherit"):
                self.next()
                source = None
                if self.is_op("("):
                    self.next()
                    source = self.expr()
                    self.expect_op(")")
                names = []
                while not self.is_op(";"):
                    names.append(self.attr_name())
                self.next()
                inherits.append(Inherit(source, names, token.start))
                continue
            path = self.attrpath()
            self.expect_op("=")
            value = self.expr()
            self.expect_op(";")
            bindings.append(Binding(path, value, token.start))
        return bindings, inherits


def parse(text: str) -> Node:
    """The syntax tree of a Nix expression; NixSyntaxError (naming the line) when it is not one, or when it is
    nested deeper than Python's stack allows."""
    parser = _Parser(text)
    try:
        return parser.parse()
    except RecursionError:
        raise parser.error(TOO_DEEP) from None
