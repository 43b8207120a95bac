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
    sub.required = True
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


def _raise_interrupted(signum: int, _frame) -> None:
    processes.begin_shutdown()  # every child dies now, and none may start after this
    raise Interrupted(signum)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; arguments no option takes are named with the subcommand they were given to."""
    args, extra = build_parser().parse_known_args(argv)
    if extra:
        prog = f"ccvm {args.command}"
        raise UsageError(f"{prog}: unrecognized arguments: {' '.join(extra)} (see {prog} --help)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGINT, _raise_interrupted)
    try:
        args = parse(argv)
        return int(args.func(args) or 0)
    except CcvmError as exc:
        processes.stop_all()
        print(f"ccvm: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        processes.stop_all()
        print("ccvm: interrupted; all QEMU processes were stopped", file=sys.stderr)
        return 130
    except BrokenPipeError:
        processes.stop_all()
        return 141
    finally:
        processes.stop_all()


if __name__ == "__main__":
    sys.exit(main())
