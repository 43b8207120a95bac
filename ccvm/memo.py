"""Compute once per key, however many threads ask at once.

The one lock-and-memoize helper: the guest assets per arch, the KVM probe
per arch and a declared launcher's build per Nix system are each worked
out once per run.  Callers asking for the same key wait for the first one;
different keys proceed in parallel.  A computation that raises is not
remembered: the next caller tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class OncePerKey(Generic[K, V]):
    def __init__(self, compute: Callable[[K], V]) -> None:
        self._compute = compute
        self._guard = threading.Lock()
        self._locks: dict[K, threading.Lock] = {}
        self._values: dict[K, V] = {}

    def get(self, key: K) -> V:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = self._compute(key)
            return self._values[key]
