"""The terminal check without a guest: tty scenarios as launcher.yaml
declares them, the pseudo-terminal screen driven against small local
programs, and ccvm's window size relay against a stand-in guest on real
sockets (a resize storm: one size in flight, the last one always arrives)."""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ccvm.checks.tty.run import take_step
from ccvm.checks.tty.screen import PtyScreen, set_window_size
from ccvm.errors import ConfigError
from ccvm.matrix.launcher import load_launcher
from ccvm.matrix.launcher_tty import CURSOR, KEYS
from ccvm.qemu import interactive
from ccvm.qemu.interactive import _Relay
from ccvm.qemu.terminal import HostTerminal, WindowSize
from ccvm.report.results import Outcome

HEAD = """\
argv: [bin/launch]
share:
  overlay: {default: true}
"""


def launcher_with(tmp_path: Path, tty: str):
    (tmp_path / "launcher.yaml").write_text(HEAD + tty)
    return load_launcher(tmp_path)


def test_a_tty_scenario_is_read_with_its_steps(tmp_path):
    launcher = launcher_with(
        tmp_path,
        textwrap.dedent(
            """\
            tty:
              scenarios:
                - name: shell
                  share: overlay
                  args: [--shell]
                  size: [30, 100]
                  steps:
                    - {name: prompt, expect: [{line: cursor, match: '# $'}], timeout: 200}
                    - {name: size, send: "stty size\\r", expect: ['^30 100$']}
                    - {name: grow, resize: [40, 120], pause: 0.5, keys: [ctrl-c, enter]}
                    - {expect: [{line: -1, match: 'x'}]}
                  exit_status: 3
            """
        ),
    )
    (scenario,) = launcher.tty
    assert (scenario.rows, scenario.cols, scenario.term, scenario.args) == (30, 100, "xterm-256color", ("--shell",))
    assert scenario.case_names == ("prompt", "size", "grow", "step-4", "exit-status")
    prompt, size, grow, last = scenario.steps
    assert prompt.expect[0].line == CURSOR and prompt.timeout_s == 200
    assert size.send == b"stty size\r" and size.expect[0].pattern.pattern == "^30 100$"
    assert grow.resize == (40, 120) and grow.send == KEYS["ctrl-c"] + b"\r" and grow.pause_s == 0.5
    assert last.expect[0].line == -1
    assert scenario.exit_status == 3


@pytest.mark.parametrize(
    ("step", "line", "message"),
    [
        ("{keys: [ctrl-q, entr]}", 12, "unknown key 'entr' (did you mean 'enter'?)"),
        ("{send: x, keys: [enter]}", 10, "`send` (text) or `keys` (named keys), not both"),
        ("{resize: [40]}", 10, "resize must be [ROWS, COLUMNS]"),
        ("{expect: [{line: 0, match: x}]}", 10, "line counts from 1 (the top) or -1 (the bottom), or is cursor"),
        ("{expect: ['(']}", 10, "bad regular expression '('"),
        ("{name: exit-status, send: x}", 10, "step name 'exit-status' is taken"),
        ("{pause: 1}", 10, "needs at least one of `resize`, `send`, `keys` or `expect`"),
    ],
)
def test_a_bad_step_is_one_line_naming_file_and_line(tmp_path, step, line, message):
    scenario = "    - name: s\n      share: overlay\n      size: [24, 80]\n"
    tty = f"tty:\n  scenarios:\n{scenario}      steps:\n        - {step}\n"
    if "keys" in step and "entr" in step:
        tty = tty.replace(f"        - {step}\n", "        - keys:\n            - enter\n            - entr\n")
    with pytest.raises(ConfigError) as caught:
        launcher_with(tmp_path, tty)
    assert f"launcher.yaml:{line}:" in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("tty", "line", "message"),
    [
        (
            "tty:\n  scenarios:\n    - {name: s, share: overlay, size: [24, 80], steps: [{send: x}]}\n"
            "    - {name: s, share: overlay, size: [24, 80], steps: [{send: y}]}\n",
            7,
            "duplicate tty scenario name 's'",
        ),
        ("tty:\n  scenarios: [x]\n", 5, "each tty scenario must be a mapping of keys to values"),
        ("tty:\n  scenarios: []\n", 5, "scenarios is empty; declare at least one terminal session"),
        (
            "tty:\n  scenarios:\n    - name: s\n      share: overlay\n      size: [24, 80]\n      steps:\n"
            "        - {name: a, send: x}\n        - {name: a, send: y}\n",
            11,
            "step name 'a' is taken; each step's name is a JUnit case of its own",
        ),
        (
            "tty:\n  scenarios:\n    - name: s\n      share: overlay\n      size: [24, 80]\n      steps: [3]\n",
            9,
            "each step must be a mapping of keys to values",
        ),
        (
            "tty:\n  scenarios:\n    - name: s\n      share: overlay\n      size: [24, 80]\n      steps: []\n",
            9,
            "steps is empty; declare at least one step",
        ),
    ],
)
def test_scenarios_and_steps_are_non_empty_lists_of_distinct_names(tmp_path, tty, line, message):
    with pytest.raises(ConfigError) as caught:
        launcher_with(tmp_path, tty)
    assert str(caught.value) == f"{tmp_path / 'launcher.yaml'}:{line}: {message}"


def test_a_tty_scenario_needs_a_declared_share_mode_and_a_size(tmp_path):
    with pytest.raises(ConfigError, match=r"launcher.yaml:7: unknown share 'rw'"):
        launcher_with(
            tmp_path,
            "tty:\n  scenarios:\n    - name: s\n      share: rw\n      size: [24, 80]\n      steps: [{send: x}]\n",
        )
    with pytest.raises(ConfigError, match="a tty scenario needs `size`"):
        launcher_with(tmp_path, "tty:\n  scenarios:\n    - name: s\n      share: overlay\n      steps: [{send: x}]\n")


# -- the screen, against local programs ---------------------------------------------------

SIZE_PRINTER = """\
import os, signal, sys, time
def show(*_):
    rows, cols = os.get_terminal_size(0).lines, os.get_terminal_size(0).columns
    sys.stdout.write(f"\\x1b[2J\\x1b[HSIZE {rows}x{cols}\\x1b[{rows};1HBOTTOM")
    sys.stdout.flush()
signal.signal(signal.SIGWINCH, show)
show()
line = sys.stdin.readline()
sys.stdout.write(f"\\x1b[2J\\x1b[HGOT {line.strip()}\\r\\n")
sys.exit(int(line.split()[-1]))
"""


def size_printer(tmp_path: Path, rows: int, cols: int) -> PtyScreen:
    return PtyScreen(
        [sys.executable, "-c", SIZE_PRINTER],
        env=dict(os.environ),
        cwd=tmp_path,
        rows=rows,
        cols=cols,
        log_path=tmp_path / "log",
    )


def test_the_screen_is_what_a_terminal_shows_and_a_resize_reaches_the_program(tmp_path):
    from ccvm.matrix.launcher_tty import ScreenLine, TtyStep

    def line(pattern, where=None):
        import re

        return ScreenLine(pattern=re.compile(pattern), line=where)

    with size_printer(tmp_path, 20, 60) as screen:
        start = take_step(screen, TtyStep(name="start", expect=(line("^SIZE 20x60$", 1), line("^BOTTOM$", -1))))
        assert start.outcome is Outcome.PASS, start.details
        grown = take_step(screen, TtyStep(name="grow", resize=(30, 90), expect=(line("^BOTTOM$", 30),)))
        assert grown.outcome is Outcome.PASS, grown.details
        assert screen.lines()[0] == "SIZE 30x90"  # the escape sequences drawn, not the bytes
        missing = take_step(screen, TtyStep(name="no", expect=(line("^NEVER$"),), timeout_s=0.3))
        assert missing.outcome is Outcome.FAIL
        assert missing.message == "the screen shows no line matching '^NEVER$' (not within 0.3s)"
        assert " 1|SIZE 30x90" in missing.details and "(30x90, rows x columns)" in missing.details
        screen.send(b"bye 7\r")
        assert screen.wait_exit(60) == 7  # it exits at once; 60 s only stops a hang
        assert screen.lines()[0] == "GOT bye 7"


def test_leaving_the_screen_kills_the_program_and_everything_it_started(tmp_path):
    marker = tmp_path / "child.pid"
    with PtyScreen(
        ["sh", "-c", f"sleep 300 & echo $! > {marker}; wait"],
        env=dict(os.environ),
        cwd=tmp_path,
        rows=24,
        cols=80,
        log_path=tmp_path / "log",
    ) as screen:
        assert screen.wait_until(lambda: marker.exists() and marker.read_text().strip() != "", 60)
    pid = int(marker.read_text())
    # A killed process vanishes in milliseconds; 60 s only bounds a wait for one that does not.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the program's child outlived the screen")


# -- the window size relay, against a stand-in guest ----------------------------------------


class StandInGuest(threading.Thread):
    """Reads sizes on the winsize socket, takes ``apply_s`` to set each (a slow TCG guest),
    says so on the control socket; counts how many were in flight at once."""

    def __init__(self, winsize: socket.socket, control: socket.socket, agent: socket.socket, apply_s: float):
        super().__init__(daemon=True)
        self.winsize, self.control, self.agent, self.apply_s = winsize, control, agent, apply_s
        self.sizes: list[tuple[int, int]] = []
        self.keys = b""
        self.sizes_at_keys: list[tuple[int, int]] | None = None  # what was set when the first key came
        self.overlaps = 0
        self.stop = threading.Event()

    def run(self) -> None:
        self.control.sendall(b"CCVM:INIT run\nCCVM:INIT tty\n")
        self.winsize.settimeout(0.05)
        self.agent.settimeout(0)
        buffer = b""
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError, BlockingIOError):
                buffer += self.winsize.recv(4096)
            with contextlib.suppress(BlockingIOError):
                self.keys += self.agent.recv(4096)
            if self.keys and self.sizes_at_keys is None:
                self.sizes_at_keys = list(self.sizes)
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self.overlaps += b"\n" in buffer  # a second size came before the guest set the first
                _, rows, cols = line.split()
                time.sleep(self.apply_s)
                self.sizes.append((int(rows), int(cols)))
                self.control.sendall(b"CCVM:TTY size %s %s\n" % (rows, cols))
        self.control.sendall(b"CCVM:EXIT 0\n")
        for sock in (self.control, self.agent, self.winsize):
            sock.close()


def test_a_resize_storm_sends_one_size_at_a_time_and_ends_on_the_last(tmp_path, monkeypatch):
    # The relay gives up waiting for a size to be set after SIZE_ACK_WAIT_S (3 s), then sends the next and lets
    # the keys go: three threads of one process on a loaded host can take that long to set a size that takes
    # 0.15 s.  Made long here, so that what is checked (one at a time, keys after the size) cannot tip with load.
    monkeypatch.setattr(interactive, "SIZE_ACK_WAIT_S", 60.0)
    master, slave = pty.openpty()
    set_window_size(slave, 30, 100)
    pairs = [socket.socketpair() for _ in range(3)]
    (agent, guest_agent), (control, guest_control), (winsize, guest_winsize) = pairs
    proc = subprocess.Popen(["sleep", "60"])
    guest = StandInGuest(guest_winsize, guest_control, guest_agent, apply_s=0.15)
    main = threading.main_thread().ident
    storm_s: list[float] = []

    def storm() -> None:
        started = time.monotonic()
        for index in range(60):  # 60 resizes in about a second (more on a loaded host: measured)
            set_window_size(master, 24 + index % 17, 80 + index % 41)
            signal.pthread_kill(main, signal.SIGWINCH)  # as the kernel does for a terminal's resize
            time.sleep(1 / 60)
        set_window_size(master, 33, 111)
        signal.pthread_kill(main, signal.SIGWINCH)
        storm_s.append(time.monotonic() - started)
        os.write(master, b"typed after the storm\r")
        deadline = time.monotonic() + 60  # reached in a second or so; 60 s only bounds a wait for a relay that does not
        while ((33, 111) not in guest.sizes[-1:] or b"typed" not in guest.keys) and time.monotonic() < deadline:
            time.sleep(0.05)
        guest.stop.set()  # the guest says its exit status and leaves; the relay ends

    try:
        with HostTerminal(slave) as host:
            relay = _Relay(
                host=host,
                proc=proc,
                agent=agent,
                control=control,
                winsize=winsize,
                sent=WindowSize(rows=30, cols=100),
                out_fd=os.open(os.devnull, os.O_WRONLY),
                deadline=time.monotonic() + 120,
            )
            guest.start()
            driver = threading.Thread(target=storm, daemon=True)
            driver.start()
            relay.run()
            driver.join(60)
        assert relay.status == 0
        assert guest.sizes[-1] == (33, 111), guest.sizes
        assert guest.overlaps == 0
        # Coalesced: one size per apply_s at most while the storm lasts (about 7 in its second), plus the first
        # and the last; one per SIGWINCH would be 61.  The storm's length is measured: a loaded host stretches it.
        most = max(12, 2 + storm_s[0] / guest.apply_s)
        assert 2 <= len(guest.sizes) <= most, (len(guest.sizes), storm_s)
        assert guest.keys.endswith(b"typed after the storm\r")
        assert guest.sizes_at_keys[-1:] == [(33, 111)]  # keys typed after a resize wait until it is set
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)


def test_a_guest_that_never_says_a_size_is_set_costs_a_second_and_no_busy_loop(tmp_path):
    """A guest without the acknowledgement (an initramfs of its own): the keys typed after a
    resize wait SIZE_ACK_WAIT_S, then go; the relay sleeps meanwhile rather than spinning."""
    master, slave = pty.openpty()
    set_window_size(slave, 30, 100)
    (agent, guest_agent), (control, guest_control), (winsize, guest_winsize) = [socket.socketpair() for _ in range(3)]
    proc = subprocess.Popen(["sleep", "60"])
    main = threading.main_thread().ident
    got: dict[str, float] = {}

    def guest() -> None:
        guest_control.sendall(b"CCVM:INIT run\nCCVM:INIT tty\n")
        time.sleep(0.2)
        set_window_size(master, 40, 120)
        resized_at = time.monotonic()  # the relay sends the size, and holds the keys from then, after this
        signal.pthread_kill(main, signal.SIGWINCH)
        time.sleep(0.05)
        os.write(master, b"k")
        guest_agent.settimeout(60)
        got["key"] = time.monotonic() - resized_at if guest_agent.recv(16) == b"k" else -1
        got["size"] = float(guest_winsize.recv(64) == b"size 40 120\n")
        guest_control.sendall(b"CCVM:EXIT 0\n")
        for sock in (guest_control, guest_agent, guest_winsize):
            sock.close()

    try:
        with HostTerminal(slave) as host:
            relay = _Relay(
                host=host,
                proc=proc,
                agent=agent,
                control=control,
                winsize=winsize,
                sent=WindowSize(rows=30, cols=100),
                out_fd=os.open(os.devnull, os.O_WRONLY),
                deadline=time.monotonic() + 120,
            )
            thread = threading.Thread(target=guest, daemon=True)
            thread.start()
            cpu = time.process_time()
            relay.run()
            cpu = time.process_time() - cpu
            thread.join(60)
        assert got["size"] == 1.0
        # Held for the acknowledgement that never came (SIZE_ACK_WAIT_S, 3 s from the size being sent, which is after
        # the resize), then sent: not at once (the lower bound, halfway to 0), not held for good (the upper, halfway
        # to the 60 s the guest waits).
        assert 0.5 <= got["key"] <= 30, got
        assert cpu < 0.5  # it slept while it waited
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)
