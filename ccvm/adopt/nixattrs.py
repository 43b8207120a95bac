"""A reader for the attribute bindings of a Nix file, for ``ccvm init``.

It parses the whole Nix expression language (functions, ``let``, ``with``,
``rec``, strings with interpolation, indented strings, paths, operators),
without evaluating it, and lists every binding as an attribute path with
its value and line: ``{ programs.shfmt = { enable = true; }; }`` gives
``programs.shfmt.enable = true`` at line 1.  Bindings are collected through
the places a module's settings sit in real files: nested attribute sets,
function bodies, ``let`` bodies and values, the arguments of a call
(``evalModule pkgs { ... }``), list items (``imports = [ { ... } ]``) and
``lib.mkIf``/``lib.mkMerge``.

A value is read as far as it is literal: strings without interpolation,
numbers, booleans, lists of those, ``a ++ b``, names bound by an enclosing
``let``, and the module system's wrappers (``lib.mkForce``, ``mkDefault``,
``mkOverride``, ``mkBefore``, ``mkAfter``, ``mkOrder``, ``mkIf``) with their
priority and order.  Anything else is ``Unknown`` with its source text, so
a caller can say what it could not read.  Text that is not Nix raises
``NixSyntaxError`` with the line.

``ccvm.adopt.nixexpr`` is a second parser of the same language (a syntax
tree that ``ccvm.adopt.nixeval`` evaluates to read a flake's outputs); the
two came from separate branches and are not yet one.  Folding this reader
onto nixexpr's tree (bindings collected by walking it) is the way to make
them one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# --- values ---------------------------------------------------------------------------------------------------------

DEFAULT_PRIORITY = 100  # a plain definition (lib.mkOverride 100)
DEFAULT_ORDER = 1000  # a plain list definition (lib.mkOrder 1000)
PRIORITIES = {"mkForce": 50, "mkVMOverride": 10, "mkDefault": 1000, "mkOptionDefault": 1500, "mkImageMediaOverride": 60}
ORDERS = {"mkBefore": 500, "mkAfter": 1500}


@dataclass(frozen=True)
class Unknown:
    """A value ccvm does not evaluate: its source text, and why."""

    text: str
    why: str = "not a literal value"


@dataclass(frozen=True, kw_only=True)
class Definition:
    """One definition of an option, as the module system merges it."""

    value: object  # str, int, float, bool, None, list, or Unknown
    priority: int = DEFAULT_PRIORITY
    order: int = DEFAULT_ORDER
    conditional: bool = False  # under lib.mkIf: applies only when its condition holds
    wrapper: str = ""  # lib.mkForce, ... as written, for the report


@dataclass(frozen=True, kw_only=True)
class Binding:
    path: tuple[str, ...]  # attribute path, dynamic parts as "${...}"
    definition: Definition
    line: int
    text: str  # the value's source text


class NixSyntaxError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


# --- tokens ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # id, int, float, str, path, uri, op, interp (a "${" outside a string), eof
    text: str
    line: int
    start: int
    end: int
    value: object = None  # a string's parts: str pieces and Unknown for each ${...}


KEYWORDS = frozenset({"let", "in", "with", "assert", "if", "then", "else", "inherit", "rec", "or"})
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_'\-]*")
_FLOAT = re.compile(r"(?:[1-9][0-9]*\.[0-9]*|0?\.[0-9]+)(?:[Ee][+-]?[0-9]+)?")
_INT = re.compile(r"[0-9]+")
_PATH_CHAR = r"[A-Za-z0-9._+\-]"
_PATH = re.compile(rf"{_PATH_CHAR}*(?:/{_PATH_CHAR}+)+/?|~(?:/{_PATH_CHAR}+)+/?")
_SPATH = re.compile(rf"<{_PATH_CHAR}+(?:/{_PATH_CHAR}+)*>")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[A-Za-z0-9%/?:@&=+$,\-_.!~*']+")
_OPS = ("...", "//", "++", "==", "!=", "<=", ">=", "&&", "||", "->", "|>", "<|", "${")
_SINGLE = "{}[]();:,.=?@!+-*/<>"


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[Token] = []
        self.braces: list[str] = []  # "{" or "${" for each open brace

    def line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def error(self, pos: int, message: str) -> NixSyntaxError:
        return NixSyntaxError(self.line_at(pos), message)

    def skip_space(self) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char.isspace():
                self.pos += 1
            elif char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error(self.pos, "unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def add(self, kind: str, start: int, end: int, value: object = None) -> None:
        self.tokens.append(Token(kind, self.text[start:end], self.line_at(start), start, end, value))
        self.pos = end

    def interpolation_end(self, start: int) -> int:
        """The index just past the '}' closing the ${ that ends at start (nested strings and braces counted)."""
        sub = _Lexer(self.text)
        sub.pos = start
        sub.braces = ["${"]
        while sub.braces:
            sub.skip_space()
            if sub.pos >= len(self.text):
                raise self.error(start, "unterminated ${ interpolation")
            sub.one()
        return sub.pos

    def string(self, start: int) -> None:
        parts: list[object] = []
        piece: list[str] = []
        pos = start + 1
        text = self.text
        escapes = {"n": "\n", "t": "\t", "r": "\r"}
        while True:
            if pos >= len(text):
                raise self.error(start, 'unterminated string (")')
            char = text[pos]
            if char == '"':
                break
            if char == "\\" and pos + 1 < len(text):
                piece.append(escapes.get(text[pos + 1], text[pos + 1]))
                pos += 2
            elif text.startswith("${", pos):
                end = self.interpolation_end(pos + 2)
                parts += ["".join(piece), Unknown(text[pos:end], "interpolation")]
                piece, pos = [], end
            else:
                piece.append(char)
                pos += 1
        parts.append("".join(piece))
        self.add("str", start, pos + 1, tuple(p for p in parts if p != ""))

    def indented_string(self, start: int) -> None:
        parts: list[object] = []
        piece: list[str] = []
        pos = start + 2
        text = self.text
        while True:
            if pos >= len(text):
                raise self.error(start, "unterminated '' string")
            if text.startswith("'''", pos):
                piece.append("''")
                pos += 3
            elif text.startswith("''$", pos):
                piece.append("$")
                pos += 3
            elif text.startswith("''\\", pos) and pos + 3 < len(text):
                piece.append({"n": "\n", "t": "\t", "r": "\r"}.get(text[pos + 3], text[pos + 3]))
                pos += 4
            elif text.startswith("''", pos):
                break
            elif text.startswith("${", pos):
                end = self.interpolation_end(pos + 2)
                parts += ["".join(piece), Unknown(text[pos:end], "interpolation")]
                piece, pos = [], end
            else:
                piece.append(text[pos])
                pos += 1
        parts.append(_dedent("".join(piece)) if len(parts) == 0 else "".join(piece))
        self.add("str", start, pos + 2, tuple(p for p in parts if p != ""))

    def one(self) -> None:
        text, pos = self.text, self.pos
        char = text[pos]
        if char == '"':
            return self.string(pos)
        if text.startswith("''", pos):
            return self.indented_string(pos)
        for pattern, kind in ((_URI, "uri"), (_PATH, "path"), (_SPATH, "path"), (_FLOAT, "float")):
            found = pattern.match(text, pos)
            if found:
                if kind == "path" and found.group().endswith("/"):
                    raise self.error(pos, f"path {found.group()!r} has a trailing slash")
                return self.add(kind, pos, found.end())
        found = _INT.match(text, pos)
        if found:
            return self.add("int", pos, found.end())
        found = _ID.match(text, pos)
        if found:
            return self.add("id", pos, found.end())
        for op in _OPS:
            if text.startswith(op, pos):
                if op == "${":
                    self.braces.append("${")
                    return self.add("interp", pos, pos + 2)
                return self.add("op", pos, pos + len(op))
        if char in _SINGLE:
            if char == "{":
                self.braces.append("{")
            elif char == "}":
                if not self.braces:
                    raise self.error(pos, "unbalanced }")
                self.braces.pop()
            return self.add("op", pos, pos + 1)
        raise self.error(pos, f"unexpected character {char!r}")

    def run(self) -> list[Token]:
        while True:
            self.skip_space()
            if self.pos >= len(self.text):
                break
            self.one()
        self.tokens.append(Token("eof", "", self.line_at(len(self.text)), len(self.text), len(self.text)))
        return self.tokens


def _dedent(text: str) -> str:
    lines = text.split("\n")
    if lines and not lines[0].strip():
        lines = lines[1:]
    indents = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip()]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] for line in lines)


# --- syntax tree ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Node:
    kind: str  # id, lit, str, list, attrs, let, with, assert, if, lambda, apply, select, binop, unop, other
    line: int
    start: int
    end: int
    value: object = None  # id: the name; lit: the number or path text; str: its parts
    children: tuple[Node, ...] = ()
    bindings: tuple[tuple[tuple[str, ...], Node, int], ...] = ()  # attrs and let: (path, value, line)
    inherits: tuple[str, ...] = ()
    op: str = ""
    names: tuple[str, ...] = field(default=())  # select: the attribute path


def _nested(children: tuple[Node, ...]) -> tuple[Node, ...]:
    return tuple(child for child in children if child is not None)


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0

    # token helpers
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def at(self, text: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind in ("op", "id") and token.text == text

    def take(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.peek()
        if not self.at(text):
            shown = token.text or "the end of the file"
            raise NixSyntaxError(token.line, f"expected {text!r}, found {shown!r}")
        return self.take()

    def node(self, kind: str, first: Token, **fields: object) -> Node:
        last = self.tokens[self.index - 1]
        return Node(kind=kind, line=first.line, start=first.start, end=last.end, **fields)

    # expressions
    def parse(self) -> Node:
        expr = self.expr()
        if self.peek().kind != "eof":
            token = self.peek()
            raise NixSyntaxError(token.line, f"unexpected {token.text!r} after the expression")
        return expr

    def expr(self) -> Node:
        token = self.peek()
        if token.kind == "id" and token.text not in KEYWORDS and self.peek(1).text == ":" and self.peek(1).kind == "op":
            self.index += 2
            return self.node("lambda", token, value=token.text, children=(self.expr(),))
        if token.kind == "id" and token.text not in KEYWORDS and self.at("@", 1) and self.at("{", 2):
            self.index += 2
            return self.formals_lambda(token)
        if self.at("{") and self.is_formals():
            return self.formals_lambda(token)
        if token.kind == "id" and token.text == "let" and not self.at("{", 1):
            self.take()
            bindings, inherits = self.binds("in")
            self.expect("in")
            body = self.expr()
            return self.node("let", token, bindings=bindings, inherits=inherits, children=(body,))
        if token.kind == "id" and token.text in ("with", "assert"):
            self.take()
            head = self.expr()
            self.expect(";")
            return self.node(token.text, token, children=(head, self.expr()))
        if token.kind == "id" and token.text == "if":
            self.take()
            cond = self.expr()
            self.expect("then")
            then = self.expr()
            self.expect("else")
            return self.node("if", token, children=(cond, then, self.expr()))
        return self.operators(0)

    def is_formals(self) -> bool:
        nxt, after = self.peek(1), self.peek(2)
        if nxt.kind == "op" and nxt.text == "}":
            return after.kind == "op" and after.text in (":", "@")
        if nxt.kind == "op" and nxt.text == "...":
            return True
        return (
            nxt.kind == "id"
            and after.kind == "op"
            and after.text in (",", "?", "}")
            and (after.text != "}" or self.peek(3).text in (":", "@"))
        )

    def formals_lambda(self, first: Token) -> Node:
        self.expect("{")
        defaults = []
        while not self.at("}"):
            if self.at("..."):
                self.take()
            else:
                name = self.take()
                if name.kind != "id":
                    raise NixSyntaxError(name.line, f"expected a parameter name, found {name.text!r}")
                if self.at("?"):
                    self.take()
                    defaults.append(self.expr())
            if not self.at("}"):
                self.expect(",")
        self.expect("}")
        if self.at("@"):
            self.take()
            self.take()
        self.expect(":")
        body = self.expr()
        return self.node("lambda", first, children=(body, *defaults))

    def attrpath(self) -> tuple[str, ...]:
        names = [self.attrname()]
        while self.at("."):
            self.take()
            names.append(self.attrname())
        return tuple(names)

    def attrname(self) -> str:
        token = self.take()
        if token.kind == "id":
            return token.text
        if token.kind == "str":
            parts = token.value or ("",)
            return "".join(p if isinstance(p, str) else p.text for p in parts)
        if token.kind == "interp":
            self.expr()
            self.expect("}")
            return self.text[token.start : self.tokens[self.index - 1].end]
        raise NixSyntaxError(token.line, f"expected an attribute name, found {token.text!r}")

    def binds(self, closer: str) -> tuple[tuple[tuple[tuple[str, ...], Node, int], ...], tuple[str, ...]]:
        bindings = []
        inherits: list[str] = []
        while not self.at(closer) and self.peek().kind != "eof":
            if self.at("inherit"):
                self.take()
                if self.at("("):
                    self.take()
                    self.expr()
                    self.expect(")")
                while not self.at(";"):
                    inherits.append(self.attrname())
                self.expect(";")
                continue
            line = self.peek().line
            path = self.attrpath()
            self.expect("=")
            value = self.expr()
            self.expect(";")
            bindings.append((path, value, line))
        return tuple(bindings), tuple(inherits)

    # Binary operators, loosest first: (operators, right-associative?)
    LEVELS: tuple[tuple[tuple[str, ...], bool], ...] = (
        (("|>", "<|"), False),
        (("->",), True),
        (("||",), False),
        (("&&",), False),
        (("==", "!="), False),
        (("<", ">", "<=", ">="), False),
        (("//",), True),
        (("!",), False),  # unary, handled below
        (("+", "-"), False),
        (("*", "/"), False),
        (("++",), True),
        (("?",), False),
    )

    def operators(self, level: int) -> Node:
        if level == len(self.LEVELS):
            return self.negation()
        ops, right = self.LEVELS[level]
        first = self.peek()
        if ops == ("!",):
            if self.at("!"):
                self.take()
                return self.node("unop", first, op="!", children=(self.operators(level),))
            return self.operators(level + 1)
        left = self.operators(level + 1)
        while self.peek().kind == "op" and self.peek().text in ops:
            op = self.take().text
            if op == "?":
                self.attrpath()
                left = self.node("binop", first, op="?", children=(left,))
                continue
            rhs = self.operators(level) if right else self.operators(level + 1)
            left = self.node("binop", first, op=op, children=(left, rhs))
            if right:
                break
        return left

    def negation(self) -> Node:
        first = self.peek()
        if self.at("-"):
            self.take()
            return self.node("unop", first, op="-", children=(self.negation(),))
        return self.application()

    def starts_simple(self) -> bool:
        token = self.peek()
        if token.kind in ("int", "float", "str", "path", "uri"):
            return True
        if token.kind == "id":
            return token.text not in KEYWORDS or token.text == "rec"
        return token.kind == "op" and token.text in ("(", "[", "{")

    def application(self) -> Node:
        first = self.peek()
        fn = self.select()
        while self.starts_simple():
            arg = self.select()
            fn = self.node("apply", first, children=(fn, arg))
        return fn

    def select(self) -> Node:
        first = self.peek()
        base = self.simple()
        if self.at("."):
            self.take()
            names = self.attrpath()
            default = None
            if self.at("or"):
                self.take()
                default = self.select()
            return self.node("select", first, names=names, children=_nested((base, default)))
        return base

    def simple(self) -> Node:
        token = self.take()
        if token.kind in ("int", "float"):
            return self.node("lit", token, value=int(token.text) if token.kind == "int" else float(token.text))
        if token.kind in ("path", "uri"):
            return self.node("lit", token, value=token.text)
        if token.kind == "str":
            return self.node("str", token, value=token.value)
        if token.kind == "id" and token.text == "rec":
            self.expect("{")
            return self.attrs(token)
        if token.kind == "id" and token.text not in KEYWORDS:
            return self.node("id", token, value=token.text)
        if token.kind == "op" and token.text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if token.kind == "op" and token.text == "[":
            items = []
            while not self.at("]"):
                if self.peek().kind == "eof":
                    raise NixSyntaxError(token.line, "unterminated list ([)")
                items.append(self.select())
            self.take()
            return self.node("list", token, children=tuple(items))
        if token.kind == "op" and token.text == "{":
            return self.attrs(token)
        raise NixSyntaxError(token.line, f"unexpected {token.text or 'end of file'!r}")

    def attrs(self, first: Token) -> Node:
        bindings, inherits = self.binds("}")
        self.expect("}")
        return self.node("attrs", first, bindings=bindings, inherits=inherits)


def parse(text: str) -> Node:
    """The syntax tree of a Nix file; NixSyntaxError when it is not Nix."""
    return _Parser(text, _Lexer(text).run()).parse()


# --- bindings -------------------------------------------------------------------------------------------------------


def _head_name(node: Node) -> str:
    """The name a call's function is known by: lib.mkForce, mkForce, lib.modules.mkForce: 'mkForce'."""
    if node.kind == "id":
        return str(node.value)
    if node.kind == "select" and node.names:
        return node.names[-1]
    return ""


def _call(node: Node) -> tuple[str, list[Node]]:
    """A call's function name and its arguments in order (f a b: 'f', [a, b])."""
    args: list[Node] = []
    while node.kind == "apply":
        args.insert(0, node.children[1])
        node = node.children[0]
    return _head_name(node), args


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text

    def source(self, node: Node) -> str:
        return self.text[node.start : node.end]

    def value(self, node: Node, scope: dict[str, Node], depth: int = 0) -> object:
        """The literal value of an expression, or Unknown."""
        if depth > 20:
            return Unknown(self.source(node), "too deeply nested")
        if node.kind == "lit":
            return node.value
        if node.kind == "str":
            parts = node.value or ()
            if all(isinstance(p, str) for p in parts):
                return "".join(parts)  # type: ignore[arg-type]
            return Unknown(self.source(node), "a string with ${...} in it")
        if node.kind == "id":
            name = str(node.value)
            if name in ("true", "false"):
                return name == "true"
            if name == "null":
                return None
            if name in scope:
                return self.value(scope[name], scope, depth + 1)
            return Unknown(name, f"{name} is not a value ccvm reads")
        if node.kind == "list":
            items = [self.value(child, scope, depth + 1) for child in node.children]
            unknown = next((item for item in items if isinstance(item, Unknown)), None)
            return Unknown(self.source(node), unknown.why) if unknown else items
        if node.kind == "binop" and node.op == "++":
            left, right = (self.value(child, scope, depth + 1) for child in node.children)
            if isinstance(left, list) and isinstance(right, list):
                return left + right
            return Unknown(self.source(node), "a list built from values ccvm does not read")
        if node.kind == "unop" and node.op == "-":
            inner = self.value(node.children[0], scope, depth + 1)
            return (
                -inner if isinstance(inner, int | float) and not isinstance(inner, bool) else Unknown(self.source(node))
            )
        name, args = _call(node)
        if name == "toString" and len(args) == 1:
            inner = self.value(args[0], scope, depth + 1)
            if isinstance(inner, bool):
                return "1" if inner else ""
            return str(inner) if isinstance(inner, int | str) else Unknown(self.source(node))
        if node.kind == "apply":
            return Unknown(self.source(node), f"a call of {name or 'a function'}")
        return Unknown(self.source(node))

    def definition(self, node: Node, scope: dict[str, Node]) -> Definition:
        """A definition with the module system's wrappers taken off (priority, order, condition)."""
        priority: int | None = None  # the outermost override counts, as in lib.modules
        order: int | None = None
        conditional, wrappers = False, []
        for _ in range(10):
            name, args = _call(node)
            number = self.value(args[0], scope) if len(args) == 2 else None
            if name in PRIORITIES and len(args) == 1:
                priority = PRIORITIES[name] if priority is None else priority
            elif name in ORDERS and len(args) == 1:
                order = ORDERS[name] if order is None else order
            elif name == "mkOverride" and isinstance(number, int) and not isinstance(number, bool):
                priority = number if priority is None else priority
            elif name == "mkOrder" and isinstance(number, int) and not isinstance(number, bool):
                order = number if order is None else order
            elif name == "mkIf" and len(args) == 2:
                conditional = True
            else:
                break
            wrappers.append(f"lib.{name}")
            node = args[-1]
        return Definition(
            value=self.value(node, scope),
            priority=DEFAULT_PRIORITY if priority is None else priority,
            order=DEFAULT_ORDER if order is None else order,
            conditional=conditional,
            wrapper=" ".join(wrappers),
        )

    def collect(self, node: Node, prefix: tuple[str, ...], scope: dict[str, Node], out: list[Binding]) -> None:
        if node.kind == "attrs":
            inner = dict(scope)
            inner.update({path[0]: value for path, value, _ in node.bindings if len(path) == 1})
            for path, value, line in node.bindings:
                self.binding(prefix + path, value, line, inner, out)
        elif node.kind == "let":
            inner = dict(scope)
            inner.update({path[0]: value for path, value, _ in node.bindings if len(path) == 1})
            for _, value, _ in node.bindings:
                if value.kind != "lambda":  # a helper function's body is not a setting
                    self.collect(value, (), inner, out)
            self.collect(node.children[0], prefix, inner, out)
        elif node.kind in ("lambda", "with", "assert"):
            self.collect(node.children[0] if node.kind == "lambda" else node.children[1], prefix, scope, out)
        elif node.kind == "if":
            for child in node.children[1:]:
                self.collect(child, prefix, scope, out)
        elif node.kind == "list":
            for child in node.children:
                self.collect(child, (), scope, out)
        elif node.kind == "apply":
            name, args = _call(node)
            if name in ("mkIf", "mkMerge") or name in PRIORITIES or name in ORDERS:
                self.collect(args[-1], prefix, scope, out)
            else:
                for arg in args:
                    self.collect(arg, (), scope, out)
        elif node.kind == "binop" and node.op == "//":
            for child in node.children:
                self.collect(child, prefix, scope, out)

    def binding(self, path: tuple[str, ...], value: Node, line: int, scope: dict[str, Node], out: list) -> None:
        name, args = _call(value)
        nested = name in ("mkIf", "mkMerge") and args and args[-1].kind in ("attrs", "list", "let", "lambda")
        if (
            nested
            or value.kind in ("attrs", "lambda", "let", "with", "if")
            or (value.kind, value.op) == ("binop", "//")
        ):
            # A set of settings under this path (perSystem = { pkgs, ... }: { ... } included).
            self.collect(value, path, scope, out)
            return
        out.append(Binding(path=path, definition=self.definition(value, scope), line=line, text=self.source(value)))
        if value.kind in ("apply", "list"):
            self.collect(value, (), scope, out)


def bindings(text: str) -> list[Binding]:
    """Every attribute binding in a Nix file, in source order; NixSyntaxError when it is not Nix."""
    out: list[Binding] = []
    _Reader(text).collect(parse(text), (), {}, out)
    return out
