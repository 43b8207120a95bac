"""What a flake offers: its systems, checks and packages.

First by evaluating it (``nix flake show --json``, offline, under a timeout):
when Nix can evaluate the flake, that decides.  Where that cannot work (no
nix, a Nix too old for the flake's nixpkgs, an input that is not in the
store and cannot be fetched offline, an evaluation error) the text of
flake.nix (and the project's files it imports) is evaluated as far as the
text allows (``ccvm.adopt.nixeval``), and init says so.  From the text, a
name is *sure* when the text alone decides it is there; a name behind a
condition the text cannot decide, or a set whose names cannot be read, is
*unsure*: named, never written as a build target.

Whether ``packages.SYSTEM.default`` is another package under a second name
(``default = launcher;``, ``default = self.packages.${system}.launcher;``) is
read from the text in both cases (``nix flake show`` names packages, not what
they are): only where the text shows it is the same value."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ccvm.adopt import nixeval
from ccvm.adopt.nixexpr import NixSyntaxError, parse
from ccvm.matrix.builds import SYSTEMS
from ccvm.nixtool import find_nix, parse_version
from ccvm.text import first_line

EVAL_TIMEOUT_S = 60.0
ALL_SYSTEMS_SINCE = (2, 13)  # nix flake show --all-systems
_SYSTEM = re.compile(r'"((?:x86_64|aarch64|i686|armv7l|riscv64|powerpc64le)-(?:linux|darwin))"')
PER_SYSTEM_OUTPUTS = ("packages", "checks", "devShells", "apps", "formatter", "legacyPackages")


@dataclass(frozen=True, kw_only=True)
class FlakeFacts:
    systems: tuple[str, ...] = ()  # every system the flake names, ccvm's or not
    checks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # system -> check names
    packages: dict[str, tuple[str, ...]] = field(default_factory=dict)  # system -> package names
    how: str = ""  # "nix flake show" or "flake.nix's text"
    why_text: str = ""  # why evaluation was not used
    unsure: tuple[str, ...] = ()  # what the text could not decide, one line each (never a build target)
    package_text: dict[str, str] = field(default_factory=dict)  # package name -> the text that defines it
    default_is: dict[str, str] = field(default_factory=dict)  # system -> the package `default` is (from the text)

    @property
    def ccvm_systems(self) -> tuple[str, ...]:
        return tuple(system for system in self.systems if system in SYSTEMS)

    def check_names(self) -> tuple[str, ...]:
        return tuple(sorted({name for names in self.checks.values() for name in names}))


def _by_system(doc: object) -> dict[str, tuple[str, ...]]:
    """nix flake show's {system: {name: {type: derivation, ...}}}: the names of derivations per system."""
    if not isinstance(doc, dict):
        return {}
    found = {}
    for system, names in doc.items():
        if isinstance(names, dict):
            found[system] = tuple(
                sorted(
                    name
                    for name, leaf in names.items()
                    if not isinstance(leaf, dict) or leaf.get("type", "derivation") == "derivation"
                )
            )
    return found


def evaluate(root: Path) -> tuple[FlakeFacts | None, str]:
    """The flake as nix sees it, or None and why not."""
    nix = find_nix()
    if nix is None:
        return None, "nix is not installed"
    version = parse_version(nix.version) or (0,)
    every = ["--all-systems"] if version[:2] >= ALL_SYSTEMS_SINCE else []
    # The directory as a flake reference: in a git work tree nix takes only the files git knows (not a .venv).
    done = nix.run(
        "flake", "show", "--json", *every, "--offline", "--no-write-lock-file", str(root), timeout_s=EVAL_TIMEOUT_S
    )
    if done.returncode is None:
        return None, f"nix flake show took longer than {EVAL_TIMEOUT_S:g}s"
    try:
        doc = json.loads(done.stdout) if done.ok else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
        return None, f"nix flake show failed offline: {first_line(errors[0] if errors else done.stderr)}"
    checks, packages = _by_system(doc.get("checks")), _by_system(doc.get("packages"))
    systems = tuple(dict.fromkeys([*checks, *packages]))
    return FlakeFacts(systems=systems, checks=checks, packages=packages, how="nix flake show"), ""


# -- from the text --------------------------------------------------------------


@dataclass
class _PerSystem:
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # system -> sure names
    unsure: list[tuple[str, str]] = field(default_factory=list)  # (what, system or ""), in order
    text: dict[str, str] = field(default_factory=dict)  # name -> its definition's text
    systems: list[str] = field(default_factory=list)
    sets: dict[str, nixeval.Attrs] = field(default_factory=dict)  # system -> its set of names


def _names(value: nixeval.Value, output: str, system: str, found: _PerSystem) -> None:
    def unsure(what: str) -> None:
        found.unsure.append((f"{output}: {what}", system))

    if isinstance(value, nixeval.Unknown):
        unsure(f"its names cannot be read from the text ({value.why or value.name})")
        return
    if not isinstance(value, nixeval.Attrs):
        unsure("not an attribute set ccvm can read")
        return
    found.names[system] = value.sure()
    found.sets[system] = value
    for name in value.sure():
        found.text.setdefault(name, value.entries[name].source())
    if value.maybe:
        unsure(f"{', '.join(sorted(value.maybe))} (behind a condition the text cannot decide)")
    if value.partial or value.wildcard is not None:
        unsure(f"more names ccvm cannot read from the text ({value.partial or 'computed'})")


def _per_system(outputs: nixeval.Attrs, output: str, text_systems: tuple[str, ...]) -> _PerSystem:
    found = _PerSystem()
    if output not in outputs.entries:
        if outputs.partial:
            found.unsure.append((f"{output}: the flake's outputs have names ccvm cannot read ({outputs.partial})", ""))
        return found
    if output in outputs.maybe:
        found.unsure.append((f"{output}: behind a condition the text cannot decide", ""))
        return found
    value = outputs.entries[output].force()
    if not isinstance(value, nixeval.Attrs):
        why = value.why if isinstance(value, nixeval.Unknown) else "not an attribute set"
        found.unsure.append((f"{output}: cannot be read from the text ({why or 'computed'})", ""))
        return found
    for system in value.sure():
        if not _SYSTEM.fullmatch(f'"{system}"'):
            found.unsure.append((f"{output}.{system}: not a Nix system ccvm knows", ""))
            continue
        found.systems.append(system)
        _names(value.entries[system].force(), output, system, found)
    if value.wildcard is not None:  # systems from a list the text cannot give: the ones it names
        inner = value.wildcard.force()
        for system in text_systems:
            if system not in found.names:
                found.systems.append(system)
                _names(inner, output, system, found)
    if value.maybe:
        found.unsure.append((f"{output}: systems {', '.join(sorted(value.maybe))} behind a condition", ""))
    return found


def _same(one: nixeval.Thunk, other: nixeval.Thunk) -> bool:
    """Whether the text shows two attributes are one value: the same object once forced (``default = x;``,
    ``self.packages.${system}.x``, ``inherit``), or the same text reaching the same unknown by the same name
    (``default = pkgs.hello;`` beside ``hello = pkgs.hello;``)."""
    a, b = one.force(), other.force()
    if a is b:
        return True
    if not (isinstance(a, nixeval.Unknown) and isinstance(b, nixeval.Unknown)):
        return False
    return bool(a.name) and a.name == b.name and bool(one.source()) and one.source() == other.source()


def _default_is(found: _PerSystem) -> dict[str, str]:
    """system -> the other package ``default`` is, where the text shows it; undecided systems are left out."""
    aliases = {}
    for system, attrs in found.sets.items():
        sure = attrs.sure()
        if "default" not in sure:
            continue
        default = attrs.entries["default"]
        try:
            alias = next((name for name in sure if name != "default" and _same(default, attrs.entries[name])), "")
        except (nixeval.OutOfSteps, RecursionError):  # too much to evaluate: undecided
            continue
        if alias:
            aliases[system] = alias
    return aliases


def _unsure_lines(found: _PerSystem) -> list[str]:
    """One line per thing the text left unsure, with the systems it holds for."""
    systems: dict[str, list[str]] = {}
    for what, system in found.unsure:
        systems.setdefault(what, []).extend([system] if system else [])
    lines = []
    for what, names in systems.items():
        head, _, rest = what.partition(": ")
        lines.append(f"{head} ({', '.join(names)}): {rest}" if names else what)
    return lines


def _inputs(top: nixeval.Attrs, outputs_fn: nixeval.Value) -> list[str]:
    names = []
    inputs = top.entries.get("inputs")
    value = inputs.force() if inputs is not None else None
    if isinstance(value, nixeval.Attrs):
        names += list(value.entries)
    if isinstance(outputs_fn, nixeval.Func) and outputs_fn.node.formals:
        names += [formal.name for formal in outputs_fn.node.formals]
    return [name for name in dict.fromkeys(names) if name != "self"]


def _outputs(root: Path) -> tuple[nixeval.Value, nixeval.Evaluator]:
    parse((root / "flake.nix").read_text(encoding="utf-8", errors="replace"))  # a syntax error, named as such
    top, evaluator = nixeval.evaluate_file(root, root / "flake.nix")
    if not isinstance(top, nixeval.Attrs) or "outputs" not in top.entries:
        raise ValueError("flake.nix is not an attribute set with `outputs`")
    outputs_fn = top.entries["outputs"].force()
    given = nixeval.Attrs({name: nixeval.Thunk.of(nixeval.Unknown(name)) for name in _inputs(top, outputs_fn)})
    given.partial = "the flake's inputs"
    outputs = nixeval.Thunk(lambda: evaluator.apply(outputs_fn, nixeval.Thunk.of(given)))
    given.entries["self"] = outputs
    given.entries["inputs"] = nixeval.Thunk.of(given)
    return outputs.force(), evaluator


def _text_systems(root: Path) -> tuple[str, ...]:
    """The systems flake.nix names outside comments, in order."""
    text = (root / "flake.nix").read_text(encoding="utf-8", errors="replace")
    return tuple(dict.fromkeys(_SYSTEM.findall(re.sub(r"#[^\n]*", "", text))))


def read_text(root: Path, why: str) -> FlakeFacts:
    text_systems = _text_systems(root)
    base = {"how": "flake.nix's text", "why_text": why}
    try:
        outputs, evaluator = _outputs(root)
        if not isinstance(outputs, nixeval.Attrs):
            raise ValueError(f"its outputs cannot be read from the text ({getattr(outputs, 'why', '') or 'computed'})")
        packages = _per_system(outputs, "packages", text_systems)
        checks = _per_system(outputs, "checks", text_systems)
        others = [_per_system(outputs, name, text_systems).systems for name in PER_SYSTEM_OUTPUTS[2:]]
    except NixSyntaxError as exc:
        return FlakeFacts(
            systems=text_systems, unsure=(f"flake.nix does not parse ({exc}): no packages or checks",), **base
        )
    except (ValueError, nixeval.OutOfSteps, RecursionError) as exc:
        reason = str(exc) or "too much to evaluate from the text"
        return FlakeFacts(systems=text_systems, unsure=(f"flake.nix: {reason}: no packages or checks",), **base)
    systems = tuple(dict.fromkeys([*packages.systems, *checks.systems, *(s for found in others for s in found)]))
    unread = [f"{line} (imported by the flake; read as unknown)" for line in dict.fromkeys(evaluator.unread)]
    return FlakeFacts(
        systems=systems or text_systems,
        checks={system: names for system, names in checks.names.items() if names},
        packages={system: names for system, names in packages.names.items() if names},
        unsure=(*_unsure_lines(packages), *_unsure_lines(checks), *unread),
        package_text=packages.text,
        default_is=_default_is(packages),
        **base,
    )


def _text_default_is(root: Path) -> dict[str, str]:
    """What the text shows ``default`` is, beside an evaluation that names packages only ({} when unreadable)."""
    text_systems = _text_systems(root)
    try:
        outputs, _ = _outputs(root)
        if not isinstance(outputs, nixeval.Attrs):
            return {}
        return _default_is(_per_system(outputs, "packages", text_systems))
    except (NixSyntaxError, ValueError, nixeval.OutOfSteps, RecursionError):
        return {}


def read_flake(root: Path) -> FlakeFacts | None:
    if not (root / "flake.nix").is_file():
        return None
    facts, why = evaluate(root)
    if facts is None:
        return read_text(root, why)
    return replace(facts, default_is=_text_default_is(root))
