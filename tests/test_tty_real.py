"""ccvm vm on a terminal, with real QEMU under a real pseudo-terminal read
through a terminal emulator: the automated terminal check on both tcg
cells, and the bad input (no terminal, a 0x0 window, a resize storm) and
every way out, each leaving the terminal as it found it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import termios
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import ROOT, ccvm_argv, run_ccvm
from gitrepo import GitRepo, isolated_git_env

from ccvm.checks.tty.screen import PtyScreen
from ccvm.ci import attest, gitchange
from ccvm.launcher.embedded import EMBEDDED

TCG_CELLS = ("x86_64-tcg-q35", "aarch64-tcg-virt")
BOOT_S = 300.0  # a TCG boot to the prompt: well under a minute, more on a loaded host; this stops a hang
STEP_S = 60.0  # a command's answer in a booted TCG guest: a second or so, more on a loaded host
PROMPT = re.compile(r"# ?$")


@pytest.mark.parametrize("cell", TCG_CELLS)
def test_the_automated_terminal_check_passes_and_is_recorded_for_the_tree(tmp_path, cell):
    repo = GitRepo.create(tmp_path / "repo")
    env = {**isolated_git_env(), "CCVM_MATRIX": str(ROOT / "matrix")}
    junit = tmp_path / "tty.xml"
    args = ("attest", "tty", "--auto", "--cell", cell, "--reports", str(tmp_path / "r"), "--junit", str(junit))
    result = run_ccvm(*args, cwd=repo.path, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    cases = {case.get("name"): case for case in ET.parse(junit).iter("testcase")}
    assert tuple(cases) == EMBEDDED.tty[0].case_names  # each step a case, in order, and the exit status
    bad = [n for n, case in cases.items() if case.find("failure") is not None or case.find("skipped") is not None]
    assert not bad, result.stdout[-3000:]
    recorded = attest.current_automated(repo.path, "tty", gitchange.tree_hash(repo.path))
    assert recorded is not None and recorded.passed and recorded.cells == (cell,)
    assert "a person still judges" in result.stdout


# -- driving ccvm vm --shell by hand -------------------------------------------------------


def shell_env(tmp_path: Path, term: str = "xterm-256color") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCVM_")}
    (tmp_path / "home").mkdir(exist_ok=True)
    env.update(CCVM_MATRIX=str(ROOT / "matrix"), HOME=str(tmp_path / "home"), TERM=term)
    env.setdefault("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    return env


def shell(tmp_path: Path, rows: int = 30, cols: int = 100, arch: str = "x86_64") -> PtyScreen:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return PtyScreen(
        ccvm_argv("vm", "--arch", arch, "--accel", "tcg", "--shell"),
        env=shell_env(tmp_path),
        cwd=work,
        rows=rows,
        cols=cols,
        log_path=tmp_path / "terminal.log",
    )


def at_prompt(screen: PtyScreen, timeout_s: float = BOOT_S) -> None:
    def prompt() -> bool:
        return PROMPT.search(screen.lines()[screen.screen.cursor.y]) is not None

    assert screen.wait_until(prompt, timeout_s), screen.dump()


def shows(screen: PtyScreen, pattern: str, timeout_s: float = STEP_S) -> re.Match:
    wanted = re.compile(pattern)
    found: list[re.Match] = []

    def check() -> bool:
        found[:] = [m for m in map(wanted.search, screen.lines()) if m]
        return bool(found)

    assert screen.wait_until(check, timeout_s), f"no line matching {pattern!r}:\n{screen.dump()}"
    return found[-1]


def attrs(fd: int) -> list:
    return termios.tcgetattr(fd)


def test_stdin_not_a_terminal_is_one_line_exit_2_and_leaves_the_terminal_as_it_was(tmp_path):
    master, slave = os.openpty()
    try:
        before = attrs(slave)
        (tmp_path / "work").mkdir()
        done = subprocess.run(
            ccvm_argv("vm", "--shell"),
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env=shell_env(tmp_path),
            cwd=tmp_path / "work",
            timeout=60,
        )
        assert done.returncode == 2
        assert attrs(slave) == before  # no raw mode left behind
        os.set_blocking(master, False)
        text = os.read(master, 65536).decode()
        lines = [line for line in text.splitlines() if line.strip()]
        assert lines == [
            "ccvm: error: ccvm vm --shell needs a terminal on standard input (it is not one); run it from a terminal"
        ]
    finally:
        os.close(master)
        os.close(slave)


def test_a_0x0_window_gives_a_working_shell_that_knows_no_size(tmp_path):
    with shell(tmp_path, rows=0, cols=0) as screen:
        at_prompt(screen)
        screen.send(b"stty size; echo SUM-$((20 + 22))\r")
        shows(screen, r"^SUM-42$")
        # the guest's terminal has no size either (busybox stty says so its own way), never a guessed one
        shows(screen, r"^stty: standard input$", timeout_s=0)
        screen.send(b"exit 4\r")
        assert screen.wait_exit(2 * STEP_S) == 4


def test_a_resize_storm_neither_hangs_nor_loses_the_last_size(tmp_path):
    with shell(tmp_path, arch="aarch64") as screen:
        at_prompt(screen)
        started = time.monotonic()
        for index in range(60):  # about 60 per second, for a second
            screen.resize(24 + index % 17, 80 + index % 41)
            screen.pump(1 / 60)
        screen.resize(33, 111)
        screen.send(b"stty size\r")
        shows(screen, r"^33 111$", timeout_s=2 * STEP_S)
        # Each of the 61 sizes sent in turn, each waiting for the guest (up to SIZE_ACK_WAIT_S, 3 s), would take
        # about a minute, a hang for ever: the bound lies below that, far above the few seconds it takes.
        assert time.monotonic() - started < 40
        screen.send(b"echo STILL-$((1 + 1))\r")
        shows(screen, r"^STILL-2$")  # and the shell still answers
        screen.send(b"exit\r")
        assert screen.wait_exit(2 * STEP_S) == 0


def test_a_program_in_the_foreground_of_a_terminal_runs_on_it(tmp_path):
    (tmp_path / "work").mkdir()
    script = "echo TERM=$TERM; stty size; read -r line; echo GOT-$line; exit 6"
    with PtyScreen(
        ccvm_argv("vm", "--arch", "aarch64", "--", "sh", "-c", script),
        env=shell_env(tmp_path),
        cwd=tmp_path / "work",
        rows=30,
        cols=100,
        log_path=tmp_path / "terminal.log",
    ) as screen:
        shows(screen, r"^30 100$", timeout_s=BOOT_S)
        shows(screen, r"^TERM=xterm-256color$", timeout_s=0)
        screen.send(b"typed\r")  # its standard input is the terminal, not /dev/null
        shows(screen, r"^GOT-typed$")
        assert screen.wait_exit(2 * STEP_S) == 6, screen.dump()
        assert attrs(screen.master) == screen.initial_attrs


def _poweroff(screen: PtyScreen) -> None:
    screen.send(b"poweroff -f\r")


def _signal(signum: int):
    def send(screen: PtyScreen) -> None:
        os.kill(screen.proc.pid, signum)

    return send


@pytest.mark.parametrize(
    ("way", "leave", "status"),
    [
        ("shell-exit", lambda screen: screen.send(b"exit 5\r"), 5),
        ("guest-power-off", _poweroff, 125),
        ("sigterm", _signal(signal.SIGTERM), 143),
        ("sigint", _signal(signal.SIGINT), 130),
    ],
)
def test_every_way_out_gives_the_terminal_back(tmp_path, way, leave, status):
    with shell(tmp_path) as screen:
        before = screen.initial_attrs
        at_prompt(screen)
        raw = attrs(screen.master)
        assert not raw[3] & (termios.ICANON | termios.ECHO | termios.ISIG)  # ccvm holds it raw meanwhile
        leave(screen)
        assert screen.wait_exit(2 * STEP_S) == status, screen.dump()
        assert attrs(screen.master) == before, way


def test_ctrl_c_while_the_guest_boots_stops_ccvm(tmp_path):
    with shell(tmp_path) as screen:
        taken = screen.wait_until(lambda: not attrs(screen.master)[3] & termios.ICANON, STEP_S)
        assert taken and attrs(screen.master)[3] & termios.ISIG  # ccvm has the terminal; the guest is booting
        screen.send(b"\x03")
        assert screen.wait_exit(STEP_S) == 130, screen.dump()
        assert attrs(screen.master) == screen.initial_attrs


SEED_MATRIX = Path(__file__).resolve().parent / "fixtures" / "seed-project" / "matrix"


def test_a_declared_launchers_tty_scenario_runs_through_its_own_wrapper(tmp_path):
    """The seed-style fixture's bin/ccvm --shell (QEMU's stdio on the terminal, a bash trap
    forwarding SIGWINCH on fd 5), driven by the scenario its launcher.yaml declares."""
    repo = GitRepo.create(tmp_path / "repo")
    env = {**isolated_git_env(), "CCVM_MATRIX": str(SEED_MATRIX)}
    junit = tmp_path / "tty.xml"
    args = ("attest", "tty", "--auto", "--cell", "x86_64-tcg-q35", "--reports", str(tmp_path / "r"))
    result = run_ccvm(*args, "--junit", str(junit), cwd=repo.path, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    cases = [case.get("name") for case in ET.parse(junit).iter("testcase")]
    assert cases[-1] == "exit-status" and "size-after-resize" in cases and len(cases) == 9
    log = (tmp_path / "r" / "tty" / "x86_64-tcg-q35" / "shell" / "terminal.log").read_bytes()
    assert b"TERM=xterm-256color" in log and b"40 120" in log
