"""ccvm.qemu.pump: output written on a thread of its own, in order, with a
bounded backlog; a gone reader drops the rest; close waits, within its
timeout.  The writers here are Python callables standing in for a slow or
gone terminal; the real ones are in test_vm_real and test_tty_real."""

from __future__ import annotations

import threading
import time

from ccvm.qemu.pump import Pump


def test_everything_put_is_written_in_order_while_the_writer_is_slow():
    written: list[bytes] = []
    gate = threading.Event()

    def write(data: bytes) -> None:
        gate.wait(30)  # the reader of ccvm's output is away until every put has been taken
        written.append(data)

    pump: Pump[bytes] = Pump(write, name="test-pump")
    chunks = [f"{i}\n".encode() for i in range(2000)]
    for chunk in chunks:
        pump.put(chunk)  # none of these waits: the writer is blocked, the backlog under its limit
    gate.set()
    assert pump.close(30)
    assert b"".join(written) == b"".join(chunks)


def test_past_its_limit_put_waits_for_the_writer_and_then_goes_on():
    gate = threading.Event()
    written: list[str] = []
    pump: Pump[str] = Pump(lambda text: (gate.wait(30), written.append(text)), name="test-pump", limit=10)
    pump.put("0123456789")  # at the limit now (the writer holds it, unwritten)
    assert pump.full
    putter = threading.Thread(target=pump.put, args=("more",))
    putter.start()
    putter.join(0.5)
    assert putter.is_alive()  # held back while the backlog is at its limit
    gate.set()
    putter.join(30)
    assert not putter.is_alive()
    assert pump.close(30)
    assert "".join(written) == "0123456789more"


def test_a_gone_reader_drops_the_rest_and_never_holds_anyone_up():
    calls = []

    def write(data: bytes) -> None:
        calls.append(data)
        raise BrokenPipeError("the terminal is gone")

    pump: Pump[bytes] = Pump(write, name="test-pump", limit=4)
    pump.put(b"first")
    assert not pump.close(30)  # not all of it was written
    assert pump.broken
    for _ in range(100):
        pump.put(b"later")  # over the limit many times, and none waits
    assert calls == [b"first"]


def test_close_gives_up_on_a_stuck_reader_at_its_timeout():
    stuck = threading.Event()
    pump: Pump[bytes] = Pump(lambda data: stuck.wait(60), name="test-pump")
    pump.put(b"never read")
    started = time.monotonic()
    assert not pump.close(0.2)
    assert time.monotonic() - started < 30  # the bound guards against waiting on the stuck writer (60 s)
    stuck.set()
