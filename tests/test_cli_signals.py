"""A stop signal decides ccvm's exit status even where Python swallows the
exception its handler raises.  Seen under load: Ctrl-C landed while
``subprocess`` ran its at-fork callbacks in the parent, Python printed
"Exception ignored" with a traceback, the spawn that followed was refused
because the run was stopping, and ccvm exited 3 ("QEMU did not start")
instead of 130.  The child below makes that timing certain: the signal is
sent from inside the at-fork callback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import argparse, os, signal, sys
    from ccvm import cli, processes
    from ccvm.errors import HostError

    def signal_self():  # runs in the parent right after fork, where Python ignores what is raised
        os.kill(os.getpid(), signal.{sig})
        for _ in range(100000):  # the handler runs at the next check of the loop
            pass

    def command(_args):
        os.register_at_fork(after_in_parent=signal_self)
        try:
            processes.spawn(["true"])
        except OSError as exc:  # as qemu/vm.py turns a refused start into a launch failure
            raise HostError(f"QEMU did not start: {{exc}}") from exc
        return 0

    cli.parse = lambda argv: argparse.Namespace(func=command)
    sys.exit(cli.main([]))
    """
)


@pytest.mark.parametrize(("sig", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_swallowed_in_an_at_fork_callback_still_decides_the_exit_status(sig, status):
    done = subprocess.run([sys.executable, "-c", CHILD.format(sig=sig)], capture_output=True, text=True, timeout=60)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"ccvm: error: interrupted by signal {status - 128}; all QEMU processes were stopped"
    ]
