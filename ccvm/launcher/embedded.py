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
)
