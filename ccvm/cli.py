"""The ``ccvm`` command.  ``main`` is the only place that turns errors into
exit statuses (see ccvm.errors for the table)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from ccvm import processes
from ccvm.errors import CcvmError, Interrupted, UsageError


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> Parser:
    from ccvm.commands import (
        attest,
        baseline,
        boot,
        build,
        docs,
        doctor,
        flake_check,
        fmt,
        gate,
        generate,
        host,
        init,
        lint,
        matrix,
        rehearse,
        report,
        vm,
    )

    parser = Parser(prog="ccvm", description="Multi-arch test-matrix runner and CI generator for QEMU VM sandboxes.")
    parser.add_argument("--matrix", metavar="DIR", help="matrix directory (default: $CCVM_MATRIX or ./matrix)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in (
        boot,
        matrix,
        doctor,
        vm,
        host,
        gate,
        attest,
        build,
        flake_check,
        fmt,
        lint,
        baseline,
        docs,
        generate,
        report,
        rehearse,
    ):
        module.register(sub)
    init.register(sub)
    return parser


class _Signals:
    """The stop signals this run received.  The handler raises Interrupted,
    but Python swallows what a handler raises where it ignores exceptions
    (an at-fork callback of ``subprocess``, a finalizer), so the signal is
    also recorded here: whatever error follows it, it decides the exit
    status."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.raising = True  # while the command runs; main reports without being cut off

    def handle(self, signum: int, _frame) -> None:
        self.received.append(signum)
        processes.begin_shutdown()  # every child dies now, and none may start after this
        if self.raising:
            raise Interrupted(signum)

    def unraisable(self, unraisable) -> None:
        """An Interrupted that Python could not raise is already recorded: no traceback for it."""
        if not isinstance(unraisable.exc_value, Interrupted):
            sys.__unraisablehook__(unraisable)

    def decide(self, error: CcvmError | None) -> CcvmError | None:
        """The error main reports: the first signal's, once one arrived."""
        if self.received and not isinstance(error, Interrupted):
            return Interrupted(self.received[0])
        return error


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; arguments no option takes are named with the subcommand they were given to."""
    words = list(sys.argv[1:] if argv is None else argv)
    args, extra = build_parser().parse_known_args(words)
    if args.command is None:
        wrong = f"unrecognized arguments: {' '.join(extra)}" if extra else "a COMMAND is required"
        raise UsageError(f"ccvm: {wrong} (see ccvm --help)")
    if extra:
        before = words[: words.index(args.command)]  # what was given to ccvm itself, ahead of the command
        prog = "ccvm" if any(word in before for word in extra) else f"ccvm {args.command}"
        raise UsageError(f"{prog}: unrecognized arguments: {' '.join(extra)} (see {prog} --help)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    signals = _Signals()
    signal.signal(signal.SIGTERM, signals.handle)
    signal.signal(signal.SIGINT, signals.handle)
    hook, sys.unraisablehook = sys.unraisablehook, signals.unraisable
    try:
        error: CcvmError | None = None
        try:
            args = parse(argv)
            status = int(args.func(args) or 0)
        except CcvmError as exc:
            error = exc
        except KeyboardInterrupt:
            processes.stop_all()
            print("ccvm: interrupted; all QEMU processes were stopped", file=sys.stderr)
            return 130
        except BrokenPipeError:
            processes.stop_all()
            return 141
        signals.raising = False
        error = signals.decide(error)
        if error is None:
            return status
        processes.stop_all()
        print(f"ccvm: error: {error}", file=sys.stderr)
        return error.exit_status
    finally:
        processes.stop_all()
        sys.unraisablehook = hook


if __name__ == "__main__":
    sys.exit(main())
