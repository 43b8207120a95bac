"""The program's output, written to ccvm's own output on a thread of its own.

QEMU drops what a guest writes to a virtio console (hvc0, the program's
channel on a terminal, or a launcher's own consoles) when the socket to
ccvm is full: a console port is never throttled.  So whoever reads a guest's channel must never wait on
whoever reads ccvm's output (a slow terminal, a paused pager, a pipe to a
program busy elsewhere).  A ``Pump`` takes the output at once and writes
it, in order, on its own thread.

Its backlog is bounded (``MAX_BACKLOG``): past that, ``put`` waits until
the writer has caught up, and only then can the guest's output be lost.
When the writer fails (the reader of ccvm's output is gone) the rest is
dropped and the guest program goes on.  ``close`` waits for the backlog to
be written, at most its timeout.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

MAX_BACKLOG = 64 << 20  # bytes or characters taken and not yet written
DRAIN_S = 300.0  # after the guest has ended, the longest ccvm waits for its output to be read

Chunk = TypeVar("Chunk", str, bytes)


class Pump(Generic[Chunk]):
    def __init__(self, write: Callable[[Chunk], None], *, name: str, limit: int = MAX_BACKLOG) -> None:
        self._write = write  # writes all of a chunk, waiting as long as it must; OSError/ValueError: gone
        self._limit = limit
        self._queue: collections.deque[Chunk] = collections.deque()
        self._backlog = 0
        self._closing = False
        self.broken = False  # the writer failed; what is put from now on is dropped
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def full(self) -> bool:
        with self._changed:
            return self._backlog >= self._limit and not self.broken

    def put(self, chunk: Chunk) -> None:
        """Take ``chunk``; waits only while the backlog is over the limit (and the pump is open)."""
        if not chunk:
            return
        with self._changed:
            self._changed.wait_for(lambda: self._backlog < self._limit or self.broken or self._closing)
            if self.broken:
                return
            self._queue.append(chunk)
            self._backlog += len(chunk)
            self._changed.notify_all()

    def close(self, timeout_s: float = DRAIN_S) -> bool:
        """No more output; wait (at most ``timeout_s``) until all of it is written.  True when it was."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout=timeout_s)
        with self._changed:
            return not self._thread.is_alive() and not self.broken

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._closing)
                if not self._queue:
                    return  # closing, and everything is written
                chunks = list(self._queue)
                self._queue.clear()
            data = chunks[0][:0].join(chunks)  # str or bytes, as put
            try:
                self._write(data)
            except (OSError, ValueError):
                with self._changed:
                    self.broken = True
                    self._queue.clear()
                    self._backlog = 0
                    self._changed.notify_all()
                return
            with self._changed:
                self._backlog -= len(data)
                self._changed.notify_all()
