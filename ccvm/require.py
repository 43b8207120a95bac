"""The one policy for something a check needs that this host lacks.

A missing tool (nix, shfmt, nixfmt, shellcheck, ruff, mdbook, QEMU) or an
unusable accelerator (kvm) makes the checks that need it skipped, each with
the reason, so that a machine without it still runs what it can.  It fails
them instead when it is required:

* ``--require NAME`` on the command line (``--require kvm`` on a runner
  known to have KVM; ``--require-accel kvm`` is the older spelling);
* under CI (the environment variable ``CI`` set to anything but ``""``,
  ``0``, ``false`` or ``no``, as GitHub Actions and most CI services set
  it): there a skip would hide a setup that forgot to install something,
  so every name is required, except those exempted with
  ``--allow-missing NAME`` (a kvm cell on a runner that may lack KVM).

boot, host, build, flake-check, fmt, lint and docs take the two options and
decide through ``Requirements``; nothing else turns a skip into a failure.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ccvm.errors import UsageError
from ccvm.report.results import Outcome

CI_OFF = frozenset({"", "0", "false", "no"})


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this run is under CI: the environment variable CI set, and not to "", 0, false or no."""
    value = (environ if environ is not None else os.environ).get("CI")
    return value is not None and value.strip().lower() not in CI_OFF


@dataclass(frozen=True, kw_only=True)
class Requirements:
    """Which of the names a command knows must be there (a missing one fails) rather than may be (skips)."""

    required: frozenset[str] = frozenset()  # --require
    allowed_missing: frozenset[str] = frozenset()  # --allow-missing
    ci: bool = False

    def named(self, name: str) -> bool:
        """Required on the command line (--require NAME), not merely by CI."""
        return name in self.required

    def requires(self, *names: str) -> bool:
        """True when any of ``names`` (what is missing: "nix"; or "qemu" and the cell's accel) is required."""
        return any(name in self.required or (self.ci and name not in self.allowed_missing) for name in names)

    def why(self, *names: str) -> str:
        """How it came to be required, for the message: "--require nix", "CI is set"."""
        given = [name for name in names if name in self.required]
        if given:
            return " ".join(f"--require {name}" for name in given)
        exempt = " or ".join(f"--allow-missing {name}" for name in names)
        return f"CI is set ({exempt} exempts it)"

    def outcome(self, *names: str) -> Outcome:
        return Outcome.FAIL if self.requires(*names) else Outcome.SKIP

    def message(self, reason: str, *names: str) -> str:
        """The reason, and when it fails, why it must be there."""
        return f"{reason} (required: {self.why(*names)})" if self.requires(*names) else reason


def add_require_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, names: Iterable[str], example: str
) -> None:
    """--require NAME and --allow-missing NAME, each repeatable, NAME one of ``names``."""
    choices = list(names)
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        choices=choices,
        metavar="NAME",
        help=f"fail, rather than skip, when NAME ({', '.join(choices)}) is missing or unusable, e.g. --require "
        f"{example} (under CI every NAME is required)",
    )
    parser.add_argument(
        "--allow-missing",
        action="append",
        default=[],
        choices=choices,
        metavar="NAME",
        help="under CI (the CI variable set), let NAME be missing: skip, do not fail",
    )


def requirements_from(args: argparse.Namespace, *, also_required: Iterable[str] = ()) -> Requirements:
    """The policy of this command line and environment (``also_required``: an older option's names)."""
    required = frozenset([*getattr(args, "require", []), *also_required])
    allowed = frozenset(getattr(args, "allow_missing", []))
    both = sorted(required & allowed)
    if both:
        raise UsageError(f"--require {both[0]} and --allow-missing {both[0]} contradict each other; give one")
    return Requirements(required=required, allowed_missing=allowed, ci=in_ci())
