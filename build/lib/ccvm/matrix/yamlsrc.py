"""YAML loading that remembers where every value came from.

Mappings and sequences come back as ``Mapping`` and ``Sequence`` (a dict
and a list) that know their file and the line of each key or item, so a
validation error can name ``file:line``.  Duplicate keys, which PyYAML
silently collapses, are rejected.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ccvm.errors import ConfigError
from ccvm.matrix.axes import suggestion


class Mapping(dict):
    path: Path
    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(self.path, self.line_of(key) if key else self.line, message)

    def reject_unknown_keys(self, allowed: list[str], what: str) -> None:
        for key in self:
            if key not in allowed:
                raise self.error(
                    key,
                    f"unknown key {key!r} in {what}{suggestion(str(key), allowed)}; allowed keys: {', '.join(allowed)}",
                )


class Sequence(list):
    path: Path
    line: int
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index]


_SCALARS = yaml.SafeLoader("")


def load_yaml(path: Path) -> object:
    """Parse one YAML file; every problem is a ConfigError naming file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark else None
        raise ConfigError(path, line, f"malformed YAML: {problem}") from None
    if node is None:
        return Mapping_at(path, 1)
    return _convert(node, path, set())


def Mapping_at(path: Path, line: int) -> Mapping:  # noqa: N802 - a constructor
    mapping = Mapping()
    mapping.path, mapping.line, mapping.key_lines = path, line, {}
    return mapping


def _convert(node: yaml.Node, path: Path, seen: set[int]) -> object:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.CollectionNode):
        # An alias makes the composer hand back the same node twice; refusing
        # it keeps a cyclic or exponential (billion laughs) file from hanging us.
        if id(node) in seen:
            raise ConfigError(
                path, line, "YAML anchors and aliases (&name, *name) are not supported here; write the values out"
            )
        seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        mapping = Mapping_at(path, line)
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(path, key_line, "mapping keys must be plain words")
            key = str(_SCALARS.construct_object(key_node))
            if key in mapping:
                raise ConfigError(path, key_line, f"duplicate key {key!r} (first at line {mapping.key_lines[key]})")
            mapping[key] = _convert(value_node, path, seen)
            mapping.key_lines[key] = key_line
        return mapping
    if isinstance(node, yaml.SequenceNode):
        sequence = Sequence(_convert(item, path, seen) for item in node.value)
        sequence.path, sequence.line = path, line
        sequence.item_lines = [item.start_mark.line + 1 for item in node.value]
        return sequence
    try:
        return _SCALARS.construct_object(node)
    except yaml.YAMLError as exc:
        raise ConfigError(path, line, f"bad value: {exc}") from None


def expect_mapping(value: object, path: Path, line: int, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ConfigError(path, line, f"{what} must be a mapping of keys to values")
    return value


def expect_sequence(value: object, path: Path, line: int, what: str) -> Sequence:
    if not isinstance(value, Sequence):
        raise ConfigError(path, line, f"{what} must be a list")
    return value
