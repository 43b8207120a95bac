"""Typed values out of a parsed matrix mapping: each reader checks one
shape and fails with ``file:line: what is wrong; what to do``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, TypeVar

from ccvm.errors import ConfigError
from ccvm.matrix.axes import suggestion
from ccvm.matrix.yamlsrc import Mapping, Sequence, expect_mapping, expect_sequence


def text(doc: Mapping, key: str, *, what: str | None = None) -> str:
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, str | int | float) or str(value) == "":
        raise doc.error(key, f"{what or key} must be a non-empty string, not {value!r}")
    return str(value)


def words(doc: Mapping, key: str, *, allow_empty: bool = True) -> tuple[str, ...]:
    """A list of strings (a bare string is one word)."""
    value = doc[key]
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence):
        raise doc.error(key, f"{key} must be a list of strings, not {value!r}")
    found = []
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ConfigError(value.path, value.line_of(index), f"each item of {key} must be a string, not {item!r}")
        found.append(str(item))
    if not found and not allow_empty:
        raise doc.error(key, f"{key} is empty; give at least one word")
    return tuple(found)


def string_map(doc: Mapping, key: str) -> dict[str, str]:
    """A mapping of names to string values (numbers are taken as text)."""
    mapping = expect_mapping(doc[key], doc.path, doc.line_of(key), key)
    found = {}
    for name, value in mapping.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise mapping.error(name, f"{key}.{name} must be a string (quote it), not {value!r}")
        found[str(name)] = str(value)
    return found


def env_name(doc: Mapping, key: str) -> str:
    name = text(doc, key)
    if not name.isidentifier() or not name.isascii():
        raise doc.error(key, f"{key} {name!r} is not an environment variable name (letters, digits, _)")
    return name


def seconds(doc: Mapping, key: str, maximum: float) -> float:
    raw = doc[key]
    value = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else math.nan
    if not math.isfinite(value) or not 0 < value <= maximum:
        raise doc.error(key, f"{key} must be a number of seconds above 0 and at most {maximum:g}, not {raw!r}")
    return value


def whole(doc: Mapping, key: str, minimum: int, maximum: int) -> int:
    raw = doc[key]
    if isinstance(raw, bool) or not isinstance(raw, int) or not minimum <= raw <= maximum:
        raise doc.error(key, f"{key} must be a whole number from {minimum} to {maximum}, not {raw!r}")
    return raw


def choice(doc: Mapping, key: str, choices: tuple[str, ...]) -> str:
    choices = tuple(str(c) for c in choices)  # enum members are shown as the words the file uses
    raw = doc[key]
    if isinstance(raw, bool):
        raise doc.error(
            key,
            f"{key}: YAML reads this word as {str(raw).lower()} (yes, no, on and off are booleans); "
            f"write one of: {', '.join(choices)}",
        )
    value = str(raw)
    if value not in choices:
        raise doc.error(
            key, f"unknown {key} {value!r}{suggestion(value, list(choices))}; choose one of: {', '.join(choices)}"
        )
    return value


class _Named(Protocol):
    @property
    def name(self) -> str: ...


NamedT = TypeVar("NamedT", bound=_Named)


def named_list(
    doc: Mapping,
    key: str,
    parse: Callable[[Mapping, int], NamedT],
    *,
    each: str,
    taken: Callable[[str], str],
    empty: str,
    reserved: tuple[str, ...] = (),
) -> tuple[NamedT, ...]:
    """A non-empty list of mappings under ``key`` (the caller checks that it is there), each parsed by
    ``parse(entry, index)`` into an item whose name no other item (nor ``reserved``) has; in file order.

    ``each`` names one entry in the error for a non-mapping entry; ``taken(name)`` is the error for a
    name used twice; ``empty`` the error for an empty list."""
    items = expect_sequence(doc[key], doc.path, doc.line_of(key), key)
    found: dict[str, NamedT] = {}
    for index, raw in enumerate(items):
        entry = expect_mapping(raw, items.path, items.line_of(index), each)
        item = parse(entry, index)
        if item.name in found or item.name in reserved:
            raise entry.error("name", taken(item.name))
        found[item.name] = item
    if not found:
        raise doc.error(key, empty)
    return tuple(found.values())
