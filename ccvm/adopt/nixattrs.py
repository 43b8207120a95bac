"""The attribute bindings of a Nix file, for ``ccvm init``.

A walker over the syntax tree ``ccvm.adopt.nixexpr`` parses (nothing is
evaluated) that lists every binding as an attribute path with its value and
line: ``{ programs.shfmt = { enable = true; }; }`` gives
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
nixexpr's ``NixSyntaxError`` with the line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ccvm.adopt import nixexpr as ast

DEFAULT_PRIORITY = 100  # a plain definition (lib.mkOverride 100)
DEFAULT_ORDER = 1000  # a plain list definition (lib.mkOrder 1000)
PRIORITIES = {"mkForce": 50, "mkVMOverride": 10, "mkDefault": 1000, "mkOptionDefault": 1500, "mkImageMediaOverride": 60}
ORDERS = {"mkBefore": 500, "mkAfter": 1500}
# Calls whose last argument is still a module's settings.
_WRAPPERS = frozenset({"mkIf", "mkMerge", *PRIORITIES, *ORDERS})


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


def _call(node: ast.Node) -> tuple[str, list[ast.Node]]:
    """A call's function name and its arguments in order (lib.mkForce a b: 'mkForce', [a, b])."""
    args: list[ast.Node] = []
    while isinstance(node, ast.Apply):
        args.insert(0, node.arg)
        node = node.fn
    if isinstance(node, ast.Var):
        return node.name, args
    if isinstance(node, ast.Select) and isinstance(node.path[-1], str):
        return node.path[-1], args
    return "", args


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.line: Callable[[int], int] = ast.line_numbers(text)
        self.out: list[Binding] = []
        self.at = 1  # the line of the binding being read

    def source(self, node: ast.Node) -> str:
        return self.text[node.start : node.end]

    def name(self, name: ast.AttrName) -> str:
        """An attribute name as written: a dynamic one as ``${...}``."""
        if isinstance(name, str):
            return name
        if isinstance(name, ast.Str):
            return "".join(p if isinstance(p, str) else "${" + self.source(p) + "}" for p in name.parts)
        return "${" + self.source(name) + "}"

    def value(self, node: ast.Node, scope: dict[str, ast.Node], depth: int = 0) -> object:
        """The literal value of an expression, or Unknown."""
        if depth > 20:
            return Unknown(self.source(node), "too deeply nested")
        if isinstance(node, ast.Literal):
            return node.value
        if isinstance(node, ast.PathLit | ast.Uri):
            return node.text
        if isinstance(node, ast.Str):
            literal = node.literal
            return Unknown(self.source(node), "a string with ${...} in it") if literal is None else literal
        if isinstance(node, ast.Var):
            if node.name in ("true", "false"):
                return node.name == "true"
            if node.name == "null":
                return None
            if node.name in scope:
                return self.value(scope[node.name], scope, depth + 1)
            return Unknown(node.name, f"{node.name} is not a value ccvm reads")
        if isinstance(node, ast.ListLit):
            items = [self.value(item, scope, depth + 1) for item in node.items]
            unknown = next((item for item in items if isinstance(item, Unknown)), None)
            return Unknown(self.source(node), unknown.why) if unknown else items
        if isinstance(node, ast.BinOp) and node.op == "++":
            left, right = self.value(node.left, scope, depth + 1), self.value(node.right, scope, depth + 1)
            if isinstance(left, list) and isinstance(right, list):
                return left + right
            return Unknown(self.source(node), "a list built from values ccvm does not read")
        if isinstance(node, ast.UnOp) and node.op == "-":
            inner = self.value(node.expr, scope, depth + 1)
            return -inner if _is_int(inner) or isinstance(inner, float) else Unknown(self.source(node))
        name, args = _call(node)
        if name == "toString" and len(args) == 1:
            inner = self.value(args[0], scope, depth + 1)
            if isinstance(inner, bool):
                return "1" if inner else ""
            return str(inner) if isinstance(inner, int | str) else Unknown(self.source(node))
        if isinstance(node, ast.Apply):
            return Unknown(self.source(node), f"a call of {name or 'a function'}")
        return Unknown(self.source(node))

    def definition(self, node: ast.Node, scope: dict[str, ast.Node]) -> Definition:
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
            elif name == "mkOverride" and _is_int(number):
                priority = number if priority is None else priority  # type: ignore[assignment]
            elif name == "mkOrder" and _is_int(number):
                order = number if order is None else order  # type: ignore[assignment]
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

    def collect(self, node: ast.Node, prefix: tuple[str, ...], scope: dict[str, ast.Node]) -> None:
        """The bindings of a set of settings (and of those nested in it) under an attribute path."""
        if isinstance(node, ast.AttrSet | ast.Let):
            inner = dict(scope)
            inner.update({b.path[0]: b.value for b in node.bindings if len(b.path) == 1 and isinstance(b.path[0], str)})
            if isinstance(node, ast.Let):
                for binding in node.bindings:
                    if not isinstance(binding.value, ast.Lambda):  # a helper function's body is not a setting
                        self.collect(binding.value, (), inner)
                self.collect(node.body, prefix, inner)
                return
            for binding in node.bindings:
                path = prefix + tuple(self.name(name) for name in binding.path)
                self.binding(path, binding.value, self.line(binding.start), inner)
        elif isinstance(node, ast.Lambda | ast.With | ast.Assert):
            self.collect(node.body, prefix, scope)
        elif isinstance(node, ast.If):
            self.collect(node.then, prefix, scope)
            self.collect(node.otherwise, prefix, scope)
        elif isinstance(node, ast.ListLit):
            for item in node.items:
                self.collect(item, (), scope)
        elif isinstance(node, ast.Apply):
            name, args = _call(node)
            if name in _WRAPPERS:
                self.collect(args[-1], prefix, scope)
            else:
                for arg in args:
                    self.collect(arg, (), scope)
        elif isinstance(node, ast.BinOp) and node.op == "//":
            self.collect(node.left, prefix, scope)
            self.collect(node.right, prefix, scope)

    def binding(self, path: tuple[str, ...], value: ast.Node, line: int, scope: dict[str, ast.Node]) -> None:
        self.at = line
        name, args = _call(value)
        settings = (ast.AttrSet, ast.ListLit, ast.Let, ast.Lambda)
        if (
            (name in ("mkIf", "mkMerge") and args and isinstance(args[-1], settings))
            or isinstance(value, ast.AttrSet | ast.Lambda | ast.Let | ast.With | ast.If)
            or (isinstance(value, ast.BinOp) and value.op == "//")
        ):
            # A set of settings under this path (perSystem = { pkgs, ... }: { ... } included).
            self.collect(value, path, scope)
            return
        self.out.append(
            Binding(path=path, definition=self.definition(value, scope), line=line, text=self.source(value))
        )
        if isinstance(value, ast.Apply | ast.ListLit):
            self.collect(value, (), scope)


def bindings(text: str) -> list[Binding]:
    """Every attribute binding in a Nix file, in source order; nixexpr.NixSyntaxError when it is not Nix (or
    nested too deeply to read)."""
    reader = _Reader(text)
    tree = ast.parse(text)
    try:
        reader.collect(tree, (), {})
    except RecursionError:
        raise ast.NixSyntaxError(ast.TOO_DEEP, reader.at) from None
    return reader.out
