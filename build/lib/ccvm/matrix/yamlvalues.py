"""Typed values out of a parsed matrix mapping: each reader checks one
shape and fails with ``file:line: what is wrong; what to do``."""

from __future__ import annotations

import math

from ccvm.errors import ConfigError
from ccvm.matrix.axes import suggestion
from ccvm.matrix.yamlsrc import Mapping, Sequence, expect_mapping


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
    value = str(doc[key])
    if value not in choices:
        raise doc.error(
            key, f"unknown {key} {value!r}{suggestion(value, list(choices))}; choose one of: {', '.join(choices)}"
        )
    return value
