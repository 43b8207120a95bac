"""Evaluating a flake's text as far as the text allows, without Nix.

The syntax tree from ``ccvm.adopt.nixexpr`` is evaluated lazily; whatever
depends on something the text does not hold (an input such as nixpkgs, the
result of ``callPackage``, a condition on the platform) is an ``Unknown``
that remembers the name it was reached by (``nixpkgs.lib.genAttrs``).  The
helpers flakes use to spread outputs over systems are understood by that
name: nixpkgs' ``lib.genAttrs``, ``lib.mapAttrs``, ``lib.recursiveUpdate``,
``lib.optionalAttrs``, ``lib.foldl'``, flake-utils' ``eachSystem``,
``eachDefaultSystem`` (and their ``Map`` forms), flake-parts' ``mkFlake``
with ``perSystem``, and the builtins they lean on.  ``import ./file.nix``
reads that file of the project.

An attribute set knows which names it surely has, which it may have (one
branch of an ``if`` the text cannot decide) and whether some of its names
cannot be read at all (``//`` with an unknown set, a ``${name}`` key the
text cannot compute).  Evaluation is bounded: past a step budget, or in a
cycle, a value is Unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.adopt import nixexpr as ast

MAX_STEPS = 200_000
MAX_IMPORT_DEPTH = 8
# flake-utils' defaultSystems
DEFAULT_SYSTEMS = ("x86_64-linux", "aarch64-linux", "x86_64-darwin", "aarch64-darwin")


class OutOfSteps(Exception):
    pass


# -- values -----------------------------------------------------------------


@dataclass(eq=False)
class Unknown:
    name: str = ""  # how it was reached: nixpkgs.lib.genAttrs ("" when it has no such name)
    why: str = ""


@dataclass(eq=False)
class Attrs:
    entries: dict[str, Thunk] = field(default_factory=dict)
    maybe: frozenset[str] = frozenset()  # names present on one branch of an undecided condition
    partial: str = ""  # why some names cannot be read ("" when every name is known)
    wildcard: Thunk | None = None  # the value of every name when the names are unknown (genAttrs over them)

    def sure(self) -> tuple[str, ...]:
        return tuple(name for name in self.entries if name not in self.maybe)


@dataclass(eq=False)
class ListV:
    items: list[Thunk]


@dataclass(eq=False)
class Prim:
    value: object  # str, int, float, bool, None


@dataclass(eq=False)
class PathV:
    path: Path


@dataclass(eq=False)
class Func:
    node: ast.Lambda
    env: Env


@dataclass(eq=False)
class Builtin:
    name: str
    arity: int
    fn: Callable[..., Value]
    args: tuple[Thunk, ...] = ()


Value = Unknown | Attrs | ListV | Prim | PathV | Func | Builtin


class Thunk:
    """A value not computed yet: an expression in its scope, or a computation; forced at most once."""

    __slots__ = ("_compute", "_value", "_busy", "node", "file")

    def __init__(self, compute: Callable[[], Value], node: ast.Node | None = None, file: Path | None = None) -> None:
        self._compute, self._value, self._busy = compute, None, False
        self.node, self.file = node, file

    @classmethod
    def of(cls, value: Value) -> Thunk:
        thunk = cls(lambda: value)
        thunk._value = value
        return thunk

    def force(self) -> Value:
        if self._value is None:
            if self._busy:
                return Unknown(why="refers to itself")
            self._busy = True
            try:
                self._value = self._compute()
            finally:
                self._busy = False
        return self._value

    def source(self) -> str:
        """The text of the expression this thunk evaluates ('' for a computed one)."""
        if self.node is None or self.file is None:
            return ""
        try:
            return self.file.read_text(encoding="utf-8", errors="replace")[self.node.start : self.node.end]
        except OSError:
            return ""


@dataclass(eq=False)
class Env:
    names: dict[str, Thunk]
    parent: Env | None = None
    with_scope: Thunk | None = None  # `with e;`: names not bound lexically come from e
    file: Path | None = None

    def lookup(self, name: str, evaluator: Evaluator) -> Thunk:
        env: Env | None = self
        withs: list[Thunk] = []
        while env is not None:
            if name in env.names:
                return env.names[name]
            if env.with_scope is not None:
                withs.append(env.with_scope)
            env = env.parent
        for scope in withs:  # the innermost `with` first
            value = scope.force()
            if isinstance(value, Attrs) and name in value.entries:
                return value.entries[name]
            if isinstance(value, Unknown):
                return Thunk.of(Unknown(f"{value.name}.{name}" if value.name else "", value.why))
        return Thunk.of(evaluator.global_value(name))


def unknown_attr(value: Unknown, name: str) -> Unknown:
    return Unknown(f"{value.name}.{name}" if value.name else "", value.why)


# -- the evaluator ------------------------------------------------------------


class Evaluator:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.steps = 0
        self.imports: dict[Path, Thunk] = {}
        self.import_depth = 0
        self.unread: list[str] = []  # files imported that could not be read or parsed, and why

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise OutOfSteps

    # files
    def file_value(self, path: Path) -> Value:
        path = path / "default.nix" if path.is_dir() else path
        if path in self.imports:
            return self.imports[path].force()
        try:
            path.resolve().relative_to(self.root)
            text = path.read_text(encoding="utf-8")
        except ValueError:
            return Unknown(f"import {path.name}", "a file outside the project")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.unread.append(f"{self._relative(path)}: {why}")
            return Unknown(f"import {path.name}", "a file ccvm cannot read")
        try:
            node = ast.parse(text)
        except ast.NixSyntaxError as exc:
            self.unread.append(f"{self._relative(path)}: {exc}")
            return Unknown(f"import {path.name}", f"{self._relative(path)} does not parse ({exc})")
        env = Env({}, file=path)
        thunk = self.thunk(node, env)
        self.imports[path] = thunk
        if self.import_depth >= MAX_IMPORT_DEPTH:
            return Unknown(f"import {path.name}", "imports nested too deep")
        self.import_depth += 1
        try:
            return thunk.force()
        finally:
            self.import_depth -= 1

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def thunk(self, node: ast.Node, env: Env) -> Thunk:
        return Thunk(lambda: self.eval(node, env), node, env.file)

    # globals and the library functions understood by name
    def global_value(self, name: str) -> Value:
        if name in ("true", "false"):
            return Prim(name == "true")
        if name == "null":
            return Prim(None)
        if name == "builtins":
            return Unknown("builtins")
        if name in BUILTINS_BARE:
            return self.builtin(f"builtins.{name}") or Unknown(name)
        return Unknown(name)

    def builtin(self, name: str) -> Value | None:
        """A function known by the name it was reached by (``nixpkgs.lib.genAttrs``), or None."""
        parts = name.split(".")
        last = parts[-1]
        if "builtins" in parts[:-1] or "lib" in parts[:-1]:
            known = LIBRARY.get(last)
            if known is not None:
                arity, fn = known
                return Builtin(last, arity, lambda *args: fn(self, *args))
            if last == "defaultSystems" and "lib" in parts:
                return ListV([Thunk.of(Prim(s)) for s in DEFAULT_SYSTEMS])
        if len(parts) >= 3 and parts[-2] == "system" and "lib" in parts[:-2] and "-" in last:
            return Prim(last)  # flake-utils.lib.system.x86_64-linux
        return None

    # application
    def apply(self, fn: Value, arg: Thunk) -> Value:
        self.step()
        if isinstance(fn, Func):
            return self.call(fn, arg)
        if isinstance(fn, Builtin):
            args = (*fn.args, arg)
            if len(args) < fn.arity:
                return Builtin(fn.name, fn.arity, fn.fn, args)
            return fn.fn(*args)
        if isinstance(fn, Unknown) and fn.name:
            known = self.builtin(fn.name)
            if isinstance(known, Builtin):
                return self.apply(known, arg)
            if fn.name == "import":
                return self.do_import(arg)
        if isinstance(fn, Unknown):
            return Unknown("", fn.why or f"the result of {fn.name or 'a function'} ccvm cannot evaluate")
        return Unknown("", "not a function")

    def do_import(self, arg: Thunk) -> Value:
        target = arg.force()
        if isinstance(target, PathV):
            return self.file_value(target.path)
        name = target.name if isinstance(target, Unknown) else ""
        return Unknown(f"import {name}".strip(), "an import of something ccvm cannot read")

    def call(self, fn: Func, arg: Thunk) -> Value:
        node = fn.node
        names: dict[str, Thunk] = {}
        env = Env(names, fn.env, file=fn.env.file)
        if node.param:
            names[node.param] = arg
        if node.formals is not None:
            given = arg.force()
            for formal in node.formals:
                if isinstance(given, Attrs) and formal.name in given.entries:
                    names[formal.name] = given.entries[formal.name]
                elif isinstance(given, Attrs) and formal.default is not None and not given.partial:
                    names[formal.name] = self.thunk(formal.default, env)
                elif isinstance(given, Unknown):
                    names[formal.name] = Thunk.of(unknown_attr(given, formal.name))
                elif formal.default is not None:
                    names[formal.name] = self.thunk(formal.default, env)
                else:
                    names[formal.name] = Thunk.of(Unknown(formal.name, "an argument ccvm cannot know"))
        return self.eval(node.body, env)

    # attribute names
    def name_of(self, name: ast.AttrName, env: Env) -> str | None:
        if isinstance(name, str):
            return name
        value = self.eval(name, env)
        return value.value if isinstance(value, Prim) and isinstance(value.value, str) else None

    def select(self, value: Value, path: list[ast.AttrName], env: Env) -> Value | None:
        """value.path; None when the attribute is surely missing."""
        for part in path:
            self.step()
            name = self.name_of(part, env)
            if isinstance(value, Unknown):
                value = unknown_attr(value, name or "<name>")
                continue
            if not isinstance(value, Attrs):
                return Unknown("", "not an attribute set")
            if name is None:
                return Unknown("", "an attribute name ccvm cannot compute")
            if name in value.entries:
                value = value.entries[name].force()
            elif value.wildcard is not None:
                value = value.wildcard.force()
            elif value.partial:
                return Unknown("", value.partial)
            else:
                return None
        return value

    # attribute sets
    def attrset(self, node: ast.AttrSet | ast.Let, env: Env, *, recursive: bool) -> tuple[Attrs, Env]:
        entries: dict[str, Thunk] = {}
        inner = Env(entries, env, file=env.file) if recursive else env
        partial = ""
        nested: dict[str, list[tuple[list[ast.AttrName], ast.Node]]] = {}
        for inherit in node.inherits:
            for raw in inherit.names:
                name = self.name_of(raw, inner)
                if name is None:
                    partial = "inherits a name ccvm cannot compute"
                    continue
                if inherit.source is None:
                    entries[name] = env.lookup(name, self)  # `inherit x;` takes x from the enclosing scope
                else:
                    source = inherit.source
                    entries[name] = Thunk(
                        lambda s=source, n=name: self.select(self.eval(s, inner), [n], inner) or Unknown(n),
                        source,
                        env.file,
                    )
        for binding in node.bindings:
            name = self.name_of(binding.path[0], inner if recursive else env)
            if name is None:
                partial = "a name ccvm cannot compute (${...})"
                continue
            if len(binding.path) == 1:
                entries[name] = self.thunk(binding.value, inner)
            else:
                nested.setdefault(name, []).append((binding.path[1:], binding.value))
        for name, parts in nested.items():
            entries[name] = Thunk.of(self.nested_attrs(parts, inner, entries.get(name)))
        return Attrs(entries, partial=partial), inner

    def nested_attrs(self, parts: list[tuple[list[ast.AttrName], ast.Node]], env: Env, base: Thunk | None) -> Attrs:
        """``a.b.c = v; a.d = w;`` as the set ``a`` (merged with ``a = { ... };`` where both are written)."""
        merged = base.force() if base is not None else Attrs()
        entries = dict(merged.entries) if isinstance(merged, Attrs) else {}
        partial = merged.partial if isinstance(merged, Attrs) else "merged with a value ccvm cannot read"
        deeper: dict[str, list[tuple[list[ast.AttrName], ast.Node]]] = {}
        for path, value in parts:
            name = self.name_of(path[0], env)
            if name is None:
                partial = "a name ccvm cannot compute (${...})"
            elif len(path) == 1:
                entries[name] = self.thunk(value, env)
            else:
                deeper.setdefault(name, []).append((path[1:], value))
        for name, more in deeper.items():
            entries[name] = Thunk.of(self.nested_attrs(more, env, entries.get(name)))
        return Attrs(entries, partial=partial)

    # expressions
    def eval(self, node: ast.Node, env: Env) -> Value:
        self.step()
        method = getattr(self, f"eval_{type(node).__name__.lower()}")
        return method(node, env)

    def eval_var(self, node: ast.Var, env: Env) -> Value:
        return env.lookup(node.name, self).force()

    def eval_literal(self, node: ast.Literal, env: Env) -> Value:
        return Prim(node.value)

    def eval_str(self, node: ast.Str, env: Env) -> Value:
        text = []
        for part in node.parts:
            if isinstance(part, str):
                text.append(part)
                continue
            value = self.eval(part, env)
            if isinstance(value, Prim) and isinstance(value.value, str):
                text.append(value.value)
            elif isinstance(value, PathV):
                text.append(str(value.path))
            else:
                return Unknown("", "a string built from values ccvm cannot know")
        return Prim("".join(text))

    def eval_pathlit(self, node: ast.PathLit, env: Env) -> Value:
        if node.text.startswith(("<", "~")) or env.file is None:
            return Unknown(node.text, "a path outside the project")
        base = env.file.parent
        return PathV(Path(node.text) if node.text.startswith("/") else (base / node.text))

    def eval_uri(self, node: ast.Uri, env: Env) -> Value:
        return Prim(node.text)

    def eval_listlit(self, node: ast.ListLit, env: Env) -> Value:
        return ListV([self.thunk(item, env) for item in node.items])

    def eval_attrset(self, node: ast.AttrSet, env: Env) -> Value:
        return self.attrset(node, env, recursive=node.recursive)[0]

    def eval_let(self, node: ast.Let, env: Env) -> Value:
        _, inner = self.attrset(node, env, recursive=True)
        return self.eval(node.body, inner)

    def eval_lambda(self, node: ast.Lambda, env: Env) -> Value:
        return Func(node, env)

    def eval_apply(self, node: ast.Apply, env: Env) -> Value:
        return self.apply(self.eval(node.fn, env), self.thunk(node.arg, env))

    def eval_select(self, node: ast.Select, env: Env) -> Value:
        found = self.select(self.eval(node.expr, env), node.path, env)
        if found is None:
            return self.eval(node.default, env) if node.default is not None else Unknown("", "a missing attribute")
        if isinstance(found, Unknown) and found.name:
            known = self.builtin(found.name)  # a value known by name (flake-utils.lib.system.x86_64-linux)
            if isinstance(known, Prim | ListV):
                return known
        return found

    def eval_hasattr(self, node: ast.HasAttr, env: Env) -> Value:
        found = self.select(self.eval(node.expr, env), node.path, env)
        return Prim(False) if found is None else Unknown("", "an attribute ccvm cannot check")

    def eval_with(self, node: ast.With, env: Env) -> Value:
        return self.eval(node.body, Env({}, env, with_scope=self.thunk(node.scope, env), file=env.file))

    def eval_assert(self, node: ast.Assert, env: Env) -> Value:
        return self.eval(node.body, env)

    def eval_unop(self, node: ast.UnOp, env: Env) -> Value:
        value = self.eval(node.expr, env)
        if isinstance(value, Prim) and node.op == "!" and isinstance(value.value, bool):
            return Prim(not value.value)
        if isinstance(value, Prim) and node.op == "-" and isinstance(value.value, int | float):
            return Prim(-value.value)
        return Unknown("", "an operation on values ccvm cannot know")

    def eval_if(self, node: ast.If, env: Env) -> Value:
        cond = self.eval(node.cond, env)
        if isinstance(cond, Prim) and isinstance(cond.value, bool):
            return self.eval(node.then if cond.value else node.otherwise, env)
        return either(self.eval(node.then, env), self.eval(node.otherwise, env))

    def eval_binop(self, node: ast.BinOp, env: Env) -> Value:
        op = node.op
        if op == "|>":
            return self.apply(self.eval(node.right, env), self.thunk(node.left, env))
        if op == "<|":
            return self.apply(self.eval(node.left, env), self.thunk(node.right, env))
        left, right = self.eval(node.left, env), self.eval(node.right, env)
        if op == "//":
            return update(left, right)
        if op == "++":
            if isinstance(left, ListV) and isinstance(right, ListV):
                return ListV(left.items + right.items)
            return Unknown("", "a list ccvm cannot read")
        if isinstance(left, Prim) and isinstance(right, Prim):
            return primitive(op, left.value, right.value)
        if op == "+" and isinstance(left, PathV) and isinstance(right, Prim) and isinstance(right.value, str):
            return PathV(Path(str(left.path) + right.value))
        return Unknown("", "an operation on values ccvm cannot know")


def primitive(op: str, a: object, b: object) -> Value:
    try:
        if op == "==":
            return Prim(a == b)
        if op == "!=":
            return Prim(a != b)
        if op in ("&&", "||", "->") and isinstance(a, bool) and isinstance(b, bool):
            return Prim({"&&": a and b, "||": a or b, "->": (not a) or b}[op])
        if op == "+" and type(a) is type(b) and isinstance(a, str | int | float):
            return Prim(a + b)  # type: ignore[operator]
        if isinstance(a, int | float) and isinstance(b, int | float):
            table = {"-": a - b, "*": a * b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}
            if op in table:
                return Prim(table[op])
            if op == "/" and b:
                return Prim(a // b if isinstance(a, int) and isinstance(b, int) else a / b)
    except TypeError:
        pass
    return Unknown("", "an operation on values ccvm cannot know")


def update(left: Value, right: Value) -> Value:
    """``left // right``: the names of a known side are surely there; an unknown side adds names ccvm cannot read."""
    if isinstance(left, Attrs) and isinstance(right, Attrs):
        entries = {**left.entries, **right.entries}
        maybe = (left.maybe - set(right.sure())) | right.maybe
        partial = right.partial or left.partial
        wildcard = right.wildcard or left.wildcard
        return Attrs(entries, frozenset(maybe), partial, wildcard)
    known = left if isinstance(left, Attrs) else right if isinstance(right, Attrs) else None
    other = right if known is left else left
    if known is None:
        return Unknown("", "attribute sets ccvm cannot read")
    why = other.why if isinstance(other, Unknown) and other.why else "merged (//) with a set ccvm cannot read"
    return Attrs(dict(known.entries), known.maybe, why, None)


def either(then: Value, otherwise: Value) -> Value:
    """The value of an ``if`` the text cannot decide: the names both branches have are sure, the others maybe."""
    if isinstance(then, Attrs) and isinstance(otherwise, Attrs):
        both = set(then.entries) & set(otherwise.entries)
        entries = {**otherwise.entries, **then.entries}
        maybe = (set(entries) - both) | then.maybe | otherwise.maybe
        return Attrs(entries, frozenset(maybe), then.partial or otherwise.partial, then.wildcard or otherwise.wildcard)
    if isinstance(then, Prim) and isinstance(otherwise, Prim) and then.value == otherwise.value:
        return then
    return Unknown("", "depends on a condition ccvm cannot decide")


# -- library functions understood by name ----------------------------------------


def _strings(ev: Evaluator, value: Value) -> list[str] | None:
    if not isinstance(value, ListV):
        return None
    names = []
    for item in value.items:
        got = item.force()
        if not (isinstance(got, Prim) and isinstance(got.value, str)):
            return None
        names.append(got.value)
    return names


def _gen_attrs(ev: Evaluator, names: Thunk, fn: Thunk) -> Value:
    listed = _strings(ev, names.force())
    function = fn.force()
    if listed is None:
        wildcard = Thunk(lambda: ev.apply(function, Thunk.of(Unknown("system", "a name ccvm cannot know"))))
        return Attrs({}, partial="names from a list ccvm cannot read", wildcard=wildcard)
    return Attrs({name: Thunk(lambda n=name: ev.apply(function, Thunk.of(Prim(n)))) for name in listed})


def _each_system(ev: Evaluator, systems: Thunk, fn: Thunk) -> Value:
    """flake-utils' eachSystem: { packages.SYSTEM = ...; checks.SYSTEM = ...; } from a function of the system."""
    listed = _strings(ev, systems.force())
    function = fn.force()
    if listed is None:
        result = ev.apply(function, Thunk.of(Unknown("system", "a name ccvm cannot know")))
        if not isinstance(result, Attrs):
            return Unknown("", "a per-system set ccvm cannot read")
        return Attrs(
            {k: Thunk.of(Attrs({}, partial="systems ccvm cannot read", wildcard=t)) for k, t in result.entries.items()},
            result.maybe,
            result.partial,
        )
    outputs: dict[str, dict[str, Thunk]] = {}
    maybe: set[str] = set()
    partial = ""
    for system in listed:
        result = ev.apply(function, Thunk.of(Prim(system)))
        if not isinstance(result, Attrs):
            return Unknown("", "a per-system set ccvm cannot read")
        for key, thunk in result.entries.items():
            outputs.setdefault(key, {})[system] = thunk
        maybe |= result.maybe
        partial = partial or result.partial
    return Attrs({k: Thunk.of(Attrs(v)) for k, v in outputs.items()}, frozenset(maybe), partial)


def _each_default_system(ev: Evaluator, fn: Thunk) -> Value:
    return _each_system(ev, Thunk.of(ListV([Thunk.of(Prim(s)) for s in DEFAULT_SYSTEMS])), fn)


def _each_default_system_map(ev: Evaluator, fn: Thunk) -> Value:
    return _gen_attrs(ev, Thunk.of(ListV([Thunk.of(Prim(s)) for s in DEFAULT_SYSTEMS])), fn)


def _map_attrs(ev: Evaluator, fn: Thunk, attrs: Thunk) -> Value:
    function, value = fn.force(), attrs.force()
    if not isinstance(value, Attrs):
        return Unknown("", "mapAttrs over a set ccvm cannot read")

    def mapped(name: str, thunk: Thunk) -> Thunk:
        return Thunk(lambda: ev.apply(ev.apply(function, Thunk.of(Prim(name))), thunk))

    wildcard = value.wildcard
    return Attrs(
        {name: mapped(name, thunk) for name, thunk in value.entries.items()},
        value.maybe,
        value.partial,
        Thunk(lambda: ev.apply(ev.apply(function, Thunk.of(Unknown("name"))), wildcard)) if wildcard else None,
    )


def _recursive_update(ev: Evaluator, left: Thunk, right: Thunk) -> Value:
    a, b = left.force(), right.force()
    if isinstance(a, Attrs) and isinstance(b, Attrs):
        entries = dict(a.entries)
        for name, thunk in b.entries.items():
            if name in entries:
                first, second = entries[name], thunk
                entries[name] = Thunk(lambda x=first, y=second: _recursive_update_values(ev, x, y))
            else:
                entries[name] = thunk
        return Attrs(entries, a.maybe | b.maybe, a.partial or b.partial, b.wildcard or a.wildcard)
    return update(a, b)


def _recursive_update_values(ev: Evaluator, left: Thunk, right: Thunk) -> Value:
    a, b = left.force(), right.force()
    return _recursive_update(ev, left, right) if isinstance(a, Attrs) and isinstance(b, Attrs) else b


def _optional_attrs(ev: Evaluator, cond: Thunk, attrs: Thunk) -> Value:
    decided = cond.force()
    value = attrs.force()
    if isinstance(decided, Prim) and isinstance(decided.value, bool):
        return value if decided.value else Attrs()
    return either(value, Attrs())


def _foldl(ev: Evaluator, fn: Thunk, start: Thunk, items: Thunk) -> Value:
    listed = items.force()
    if not isinstance(listed, ListV):
        return update(start.force(), Unknown("", "a fold over a list ccvm cannot read"))
    function = fn.force()
    acc = start
    for item in listed.items:
        acc = Thunk.of(ev.apply(ev.apply(function, acc), item))
    return acc.force()


def _attr_names(ev: Evaluator, attrs: Thunk) -> Value:
    value = attrs.force()
    if isinstance(value, Attrs) and not value.partial and not value.maybe and value.wildcard is None:
        return ListV([Thunk.of(Prim(name)) for name in sorted(value.entries)])
    return Unknown("", "the names of a set ccvm cannot read")


def _list_to_attrs(ev: Evaluator, items: Thunk) -> Value:
    listed = items.force()
    if not isinstance(listed, ListV):
        return Attrs(partial="listToAttrs over a list ccvm cannot read")
    entries: dict[str, Thunk] = {}
    partial = ""
    for item in listed.items:
        pair = item.force()
        name = ev.select(pair, ["name"], Env({})) if isinstance(pair, Attrs) else None
        if isinstance(name, Prim) and isinstance(name.value, str) and isinstance(pair, Attrs):
            entries[name.value] = pair.entries.get("value") or Thunk.of(Unknown())
        else:
            partial = "listToAttrs with names ccvm cannot read"
    return Attrs(entries, partial=partial)


def _name_value_pair(ev: Evaluator, name: Thunk, value: Thunk) -> Value:
    return Attrs({"name": name, "value": value})


def _map(ev: Evaluator, fn: Thunk, items: Thunk) -> Value:
    listed = items.force()
    if not isinstance(listed, ListV):
        return Unknown("", "a list ccvm cannot read")
    function = fn.force()
    return ListV([Thunk(lambda i=item: ev.apply(function, i)) for item in listed.items])


def _replace_strings(ev: Evaluator, old: Thunk, new: Thunk, text: Thunk) -> Value:
    olds, news, value = _strings(ev, old.force()), _strings(ev, new.force()), text.force()
    if olds is None or news is None or not (isinstance(value, Prim) and isinstance(value.value, str)):
        return Unknown("", "a string ccvm cannot compute")
    result = value.value
    for a, b in zip(olds, news, strict=False):
        result = result.replace(a, b)
    return Prim(result)


def _mk_flake(ev: Evaluator, args: Thunk, module: Thunk) -> Value:
    """flake-parts' mkFlake: the module's `systems`, `perSystem` (spread over them) and `flake`."""
    value = module.force()
    if isinstance(value, Func):
        value = ev.apply(value, Thunk.of(Unknown("flake-parts", "a flake-parts module argument")))
    if not isinstance(value, Attrs):
        return Unknown("", "a flake-parts module ccvm cannot read")
    systems = value.entries.get("systems") or Thunk.of(Unknown("systems"))
    result: Value = Attrs()
    per_system = value.entries.get("perSystem")
    if per_system is not None:
        function = per_system.force()

        def each(system: Thunk) -> Value:
            given = Attrs({"system": system}, partial="flake-parts module arguments")
            for name in ("pkgs", "config", "self'", "inputs'", "lib", "final"):
                given.entries[name] = Thunk.of(Unknown(name))
            return ev.apply(function, Thunk.of(given)) if isinstance(function, Func) else function

        result = _each_system(ev, systems, Thunk.of(Builtin("perSystem", 1, each)))
    flake = value.entries.get("flake")
    if flake is not None:
        result = _recursive_update(ev, Thunk.of(result), flake)
    imports = value.entries.get("imports")
    listed = imports.force() if imports is not None else ListV([])
    if isinstance(result, Attrs) and not (isinstance(listed, ListV) and not listed.items):
        result = Attrs(result.entries, result.maybe, "flake-parts modules imported from elsewhere", result.wildcard)
    return result


LIBRARY: dict[str, tuple[int, Callable[..., Value]]] = {
    "genAttrs": (2, _gen_attrs),
    "eachSystem": (2, _each_system),
    "eachSystemMap": (2, _gen_attrs),
    "eachDefaultSystem": (1, _each_default_system),
    "eachDefaultSystemMap": (1, _each_default_system_map),
    "mapAttrs": (2, _map_attrs),
    "recursiveUpdate": (2, _recursive_update),
    "optionalAttrs": (2, _optional_attrs),
    "foldl'": (3, _foldl),
    "foldl": (3, _foldl),
    "attrNames": (1, _attr_names),
    "listToAttrs": (1, _list_to_attrs),
    "nameValuePair": (2, _name_value_pair),
    "map": (2, _map),
    "replaceStrings": (3, _replace_strings),
    "mkFlake": (2, _mk_flake),
}
BUILTINS_BARE = frozenset({"map", "import", "toString", "removeAttrs", "baseNameOf", "dirOf"})


def evaluate_file(root: Path, path: Path) -> tuple[Value, Evaluator]:
    """The value of a file of the project (lazy: its parts are computed when forced)."""
    evaluator = Evaluator(root)
    return evaluator.file_value(path), evaluator
