"""ccvm's embedded launcher (``ccvm vm``), declared with the very type a
project's matrix/launcher.yaml declares its own launcher with.

It is the launcher under test where a project declares none, and the one
``nox -s boot`` boots on a fresh machine.  Its two boots per cell run the
stub (ccvm/guest/stub.sh), which prints what the guest sees as
``CCVM:FACT key=value`` lines:

  overlay   the default share (read-only 9p lower + guest overlay); the
            stub gets the hard arguments and exits with EXPECTED_STATUS
  writable  the writable share: the stub's write reaches the host

Each boot names the ccvm cases asserted on it (``BootScenario.cases``:
argv-verbatim, share-overlay, exit-status; share-writable), which read the
stub's facts; a project's boot is one case asserting what it declares.
"""

from __future__ import annotations

import re
import secrets

from ccvm.matrix.launcher import Launcher, Secrets, ShareSwitch, Staged
from ccvm.matrix.launcher_boot import BootDeclaration, BootScenario
from ccvm.matrix.launcher_tty import CURSOR, KEYS, ScreenLine, TtyScenario, TtyStep

NAME = "ccvm vm"
STUB = "ccvm-stub"
# Arguments that break naive quoting: each must arrive byte for byte (the boot's
# argv-verbatim case, and the host suite's argv cases).
HARD_ARGS: tuple[str, ...] = (
    "two words",
    'it\'s "quoted"',
    "$HOME ${PATH} $(echo no) `echo no`",
    "back\\slash\\\\",
    "new\nline",
    "",
    "héllo wörld ✓ 日本",
    "--flag",
    "-x",
    "*",
    "  padded  ",
)
EXPECTED_STATUS = 7
PROBE_FILE = ".ccvm-probe"  # the host writes it into the share; the stub reads it back
GUEST_FILE = ".ccvm-guest-wrote"  # the stub writes CCVM_STUB_TOKEN into it
TOKEN_VARIABLE = "CCVM_STUB_TOKEN"
# One random token per ccvm process: what the guest reads and writes is this run's.
RUN_TOKEN = secrets.token_hex(8)


def probe_text(token: str = RUN_TOKEN) -> str:
    """What the host writes into the share for the guest to read back."""
    return f"host probe {token} ✓"


def embedded_boots(token: str = RUN_TOKEN) -> BootDeclaration:
    """The embedded launcher's two boots per cell; their timeout is the cell's."""
    env = {TOKEN_VARIABLE: token}
    prepare = {PROBE_FILE: probe_text(token)}
    return BootDeclaration(
        timeout_s=None,
        scenarios=(
            BootScenario(
                name="overlay",
                args=HARD_ARGS,
                share="overlay",
                env={**env, "CCVM_STUB_EXIT": str(EXPECTED_STATUS)},
                prepare=prepare,
                expect=(re.compile(r"^CCVM:FACT share\.fstype=overlay$"),),
                must_not_exist=(GUEST_FILE,),
                exit_status=EXPECTED_STATUS,
                cases=("argv-verbatim", "share-overlay", "exit-status"),
            ),
            BootScenario(
                name="writable",
                share="writable",
                env=env,
                prepare=prepare,
                expect=(re.compile(r"^CCVM:FACT share\.fstype=9p$"),),
                must_exist=(GUEST_FILE,),
                cases=("share-writable",),
            ),
        ),
    )


def _line(pattern: str, line: int | str | None = None) -> ScreenLine:
    return ScreenLine(pattern=re.compile(pattern), line=line)


# The terminal check of `ccvm vm --shell` (ccvm attest tty --auto): what a person checks by hand,
# step by step, each a JUnit case.  Outputs carry markers of their own, so no step is met by an
# earlier step's lines still on the screen.
TTY_ROWS, TTY_COLS = 30, 100
TTY_RESIZED = (40, 120)
TTY_VI_RESIZED = (45, 130)  # larger: a screen not redrawn shows no "~" down there
PROMPT = r"# ?$"  # busybox sh's prompt for root, "/the/dir # "
SHELL_EXIT_STATUS = 3


def embedded_tty(boot_timeout_s: float = 120.0) -> tuple[TtyScenario, ...]:
    rows, cols = TTY_RESIZED
    vi_rows, _ = TTY_VI_RESIZED
    prompt = _line(PROMPT, CURSOR)  # the cursor's line: an earlier prompt higher up does not count
    steps = (
        TtyStep(name="shell-prompt", expect=(prompt,), timeout_s=boot_timeout_s),
        TtyStep(name="term", send=b"echo TERM=$TERM\r", expect=(_line(r"^TERM=xterm-256color$"),)),
        TtyStep(name="size", send=b"stty size\r", expect=(_line(rf"^{TTY_ROWS} {TTY_COLS}$"),)),
        TtyStep(name="resize", resize=TTY_RESIZED, send=b"stty size\r", expect=(_line(rf"^{rows} {cols}$"),)),
        # vi fills the screen it is told: "~" down to the line above its status line.
        TtyStep(name="vi", send=b"vi\r", expect=(_line(r"^~$", 2), _line(r"^~$", rows - 1))),
        # the guest's vi gets SIGWINCH and draws again, at the new size
        TtyStep(name="vi-resize", resize=TTY_VI_RESIZED, expect=(_line(r"^~$", vi_rows - 1),)),
        TtyStep(name="vi-quit", send=b":q!\r", expect=(prompt,)),
        TtyStep(
            name="ctrl-c-start", send=b"sh -c 'echo SLEEPING-C; exec sleep 30'\r", expect=(_line(r"^SLEEPING-C$"),)
        ),
        TtyStep(name="ctrl-c", pause_s=0.5, send=KEYS["ctrl-c"], expect=(prompt,), timeout_s=20),
        TtyStep(name="ctrl-c-status", send=b"echo RC-C=$?\r", expect=(_line(r"^RC-C=130$"),)),
        TtyStep(
            name="ctrl-z-start", send=b"sh -c 'echo SLEEPING-Z; exec sleep 31'\r", expect=(_line(r"^SLEEPING-Z$"),)
        ),
        TtyStep(name="ctrl-z", pause_s=0.5, send=KEYS["ctrl-z"], expect=(_line(r"Stopped.*sleep 31"),), timeout_s=20),
        TtyStep(name="fg", send=b"fg\r", expect=(_line(r"^sh -c .echo SLEEPING-Z"),)),
        TtyStep(name="ctrl-backslash", pause_s=1.0, send=KEYS["ctrl-\\"], expect=(prompt,), timeout_s=20),
        TtyStep(name="ctrl-backslash-status", send=b"echo RC-Q=$?\r", expect=(_line(r"^RC-Q=131$"),)),
        TtyStep(name="exit", send=f"exit {SHELL_EXIT_STATUS}\r".encode()),
    )
    return (
        TtyScenario(
            name="shell",
            share="overlay",
            rows=TTY_ROWS,
            cols=TTY_COLS,
            term="xterm-256color",
            args=("--shell",),
            steps=steps,
            exit_status=SHELL_EXIT_STATUS,
        ),
    )


EMBEDDED = Launcher(
    name=NAME,
    argv=("ccvm", "vm"),  # symbolic: ccvm.launcher.resolve runs this interpreter's ccvm
    embedded=True,
    program=(STUB,),
    share_modes=(
        ShareSwitch(mode="overlay"),
        ShareSwitch(mode="writable", flag="--writable-cwd", variable="CCVM_WRITABLE_CWD"),
    ),
    # ccvm vm's own rule: it stages both files of the agent's configuration, each readable by the owner alone.
    staged={tilde: Staged.OWNER_ONLY for tilde in (*Secrets().files, *Launcher.config_files)},
    host_scripts=("tests/host.sh",),
    boot=embedded_boots(),
    tty=embedded_tty(),
)
