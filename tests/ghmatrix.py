"""Expand a GitHub Actions ``strategy.matrix`` into its job combinations,
following GitHub's documented rules:

1. Every key other than ``include`` and ``exclude`` is an axis (a list of
   values); the base combinations are their product, in key order, the
   first axis varying slowest.  No axes means no base combinations.
2. ``exclude`` entries drop every combination they match; an entry matches
   when each of its keys has the same value in the combination (a partial
   match is enough).
3. ``include`` entries are applied in order.  An entry is merged into every
   base combination where none of its keys would change an original axis
   value (values added by an earlier include may be overwritten).  An entry
   merged into no combination becomes a combination of its own; later
   entries are not merged into such added combinations.

Used by the tests to check that the generated workflow runs exactly the
matrix's cells.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping


def _axes(matrix: Mapping[str, object]) -> dict[str, list[object]]:
    axes = {}
    for key, values in matrix.items():
        if key in ("include", "exclude"):
            continue
        if not isinstance(values, list) or not values:
            raise ValueError(f"matrix axis {key!r} must be a non-empty list, not {values!r}")
        axes[key] = values
    return axes


def _entries(matrix: Mapping[str, object], key: str) -> list[dict[str, object]]:
    entries = matrix.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(entry, Mapping) for entry in entries):
        raise ValueError(f"matrix {key} must be a list of mappings")
    return [dict(entry) for entry in entries]


def _matches(combo: Mapping[str, object], entry: Mapping[str, object]) -> bool:
    return all(key in combo and combo[key] == value for key, value in entry.items())


def expand(matrix: Mapping[str, object]) -> list[dict[str, object]]:
    """Every combination the matrix runs, in GitHub's order."""
    axes = _axes(matrix)
    base = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())] if axes else []
    excludes = _entries(matrix, "exclude")
    base = [combo for combo in base if not any(_matches(combo, entry) for entry in excludes)]
    originals = [dict(combo) for combo in base]  # the axis values, which includes may not change
    added: list[dict[str, object]] = []
    for entry in _entries(matrix, "include"):
        merged = False
        for combo, original in zip(base, originals, strict=True):
            if all(original.get(key, value) == value for key, value in entry.items()):
                combo.update(entry)
                merged = True
        if not merged:
            added.append(dict(entry))
    return base + added
