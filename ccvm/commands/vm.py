"""ccvm vm: boot one guest and run PROGRAM in it (the launcher).

Everything after PROGRAM belongs to the program, untouched, even words
that look like launcher options.  CCVM_DRYRUN=1 prints the launch plan as
JSON and starts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ccvm.commands.common import add_asset_options, asset_store, launcher_matrix_from, positive_float
from ccvm.errors import GuestFailure, GuestNoExitStatus, HostError, LaunchError, UsageError
from ccvm.matrix.axes import Accel, Arch, Machine
from ccvm.qemu import interactive
from ccvm.qemu.config_staging import home_files
from ccvm.qemu.env import qemu_environment
from ccvm.qemu.guestrun import run_guest
from ccvm.qemu.launch import GuestRequest, Mode, stage
from ccvm.qemu.options import resolve
from ccvm.qemu.plan import launch_plan
from ccvm.qemu.terminal import HostTerminal, require_terminal

DEFAULT_TIMEOUT_S = 3600.0
EPILOG = """\
precedence: a flag beats its environment variable, which beats the matrix
default (matrix/boot.yaml: `launcher` and `defaults`).  Environment twins:
  --arch CCVM_ARCH   --accel CCVM_ACCEL   --machine CCVM_MACHINE
  --memory CCVM_MEMORY   --cores CCVM_CORES   --writable-cwd CCVM_WRITABLE_CWD=1
  --shell CCVM_SHELL=1   --ccvm-debug CCVM_DEBUG=1   --config-dir CCVM_CONFIG_DIR
CCVM_DRYRUN=1 prints the launch plan (JSON) and starts nothing.
exit status: the program's own; 2 bad options; 3 host problem; 125 the guest
never reported the program's exit status."""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "vm",
        help="boot a guest and run PROGRAM in it",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="ccvm vm [options] [--] PROGRAM [ARGS...]",
    )
    parser.add_argument("--arch", metavar="ARCH", help=f"{', '.join(a.value for a in Arch)} (default: host)")
    parser.add_argument("--accel", metavar="ACCEL", help=f"{', '.join(a.value for a in Accel)}")
    parser.add_argument(
        "--machine", metavar="MACHINE", help=f"{', '.join(m.value for m in Machine)} (default: by arch)"
    )
    parser.add_argument("--memory", metavar="SIZE", help="guest memory, e.g. 1G (run-time: no rebuild)")
    parser.add_argument("--cores", metavar="N", help="guest vCPUs (run-time: no rebuild)")
    parser.add_argument(
        "--writable-cwd",
        action="store_true",
        default=None,
        help="the guest's writes to the working directory reach the host",
    )
    parser.add_argument(
        "--shell", action="store_true", default=None, help="an interactive guest shell instead of PROGRAM"
    )
    parser.add_argument(
        "--ccvm-debug",
        dest="debug",
        action="store_true",
        default=None,
        help="stream the guest console; keep the scratch directory and print its path",
    )
    parser.add_argument("--config-dir", metavar="DIR", help="agent configuration to stage (default: ~/.claude)")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help="give up on the guest after S seconds (default: %(default)g)",
    )
    add_asset_options(parser)
    parser.add_argument("program", nargs=argparse.REMAINDER, metavar="PROGRAM [ARGS...]")
    parser.set_defaults(func=run)


def _program(args: argparse.Namespace, shell: bool) -> tuple[str, ...]:
    words = list(args.program)
    if words and words[0] == "--":
        words = words[1:]
    if not words and not shell:
        raise UsageError("ccvm vm: name the PROGRAM to run (or use --shell); see ccvm vm --help")
    return tuple(words) if words else ("sh",)


def run(args: argparse.Namespace) -> int:
    matrix = launcher_matrix_from(args)
    try:
        cwd = Path.cwd()
    except OSError as exc:
        raise UsageError(f"the working directory is gone or unreadable ({exc.strerror}); cd somewhere real") from None
    options = resolve(args, os.environ, matrix, Path.home())
    program = _program(args, options.mode is Mode.SHELL)
    dry_run = os.environ.get("CCVM_DRYRUN", "") not in ("", "0")
    if options.mode is Mode.SHELL and not dry_run:
        require_terminal(0, "ccvm vm --shell")  # before anything is fetched or started
    request = GuestRequest(
        arch=options.arch,
        accel=options.accel,
        machine=options.machine,
        memory_mib=options.memory_mib,
        cores=options.cores,
        program=program,
        share_dir=cwd,
        share_writable=options.writable_cwd,
        mode=options.mode,
        home_files=home_files(options.config_dir),
        terminal=interactive.terminal_for(0, os.environ) if _on_terminal(options.mode) else None,
    )
    assets = asset_store(args, matrix).for_arch(options.arch)
    scratch = Path(tempfile.mkdtemp(prefix="ccvm-"))
    keep = options.mode is Mode.DEBUG
    try:
        if dry_run:
            spec = stage(request, assets, scratch)
            plan = launch_plan(
                request=request, spec=spec, scratch=scratch, sources=options.sources, qemu_env=qemu_environment()
            )
            print(json.dumps(plan, indent=2))  # ASCII: valid JSON whatever bytes argv holds
            return 0
        if keep:
            print(f"ccvm: debug: scratch directory {scratch} (kept)", file=sys.stderr)
        if request.terminal is not None:
            return _run_on_terminal(request, assets, scratch, None if options.mode is Mode.SHELL else args.timeout)
        return _run_program(request, assets, scratch, args.timeout, debug=keep)
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)


def _on_terminal(mode: Mode) -> bool:
    """The shell always runs on the terminal; a program does when ccvm runs in the
    foreground of one (standard input and output both terminals); debug never does."""
    if mode is Mode.SHELL:
        return True
    return mode is Mode.RUN and os.isatty(0) and os.isatty(1)


def _run_on_terminal(request: GuestRequest, assets, scratch: Path, timeout_s: float | None) -> int:
    sys.stdout.flush()
    try:
        with HostTerminal(0) as host:
            return interactive.run_on_terminal(request, assets, scratch, host=host, timeout_s=timeout_s)
    except LaunchError as exc:
        raise HostError(f"QEMU did not start: {exc}") from None
    except GuestFailure as exc:  # the terminal is restored by now
        if exc.tail:
            print(exc.tail, file=sys.stderr)
        raise GuestNoExitStatus(f"{exc.reason}; the program's exit status is unknown") from None


def _run_program(request: GuestRequest, assets, scratch: Path, timeout_s: float, *, debug: bool) -> int:
    try:
        run = run_guest(
            request,
            assets,
            log_dir=scratch / "logs",
            timeout_s=timeout_s,
            scratch=scratch,
            mirror_serial=sys.stderr if debug else None,
            mirror_agent=sys.stdout,
        )
    except LaunchError as exc:
        raise HostError(f"QEMU did not start: {exc}") from None  # the reason, the command and QEMU's output
    except GuestFailure as exc:
        print(exc.tail, file=sys.stderr)
        raise GuestNoExitStatus(f"{exc.reason}; the program's exit status is unknown") from None
    return run.status


__all__ = ["register"]
