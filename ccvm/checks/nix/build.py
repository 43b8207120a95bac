"""Flake builds: one `nix build` per (attribute, system), each a JUnit case.

Systems this host cannot build (not its own, not in extra-platforms, no
remote builder for it) are skipped with the reason.  Each target first
goes through the egress preflight, so a blocked download fails in seconds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

from ccvm.checks.nix.egress import CONNECT_TIMEOUT_S, Preflight, preflight
from ccvm.matrix.builds import BuildTarget
from ccvm.nixtool import (
    NIX,
    Nix,
    error_summary,
    error_text,
    failed_derivations,
    host_platforms,
    log_tail,
    missing_reason,
    needs_newer_nix,
    store_name,
)
from ccvm.report.progress import Progress
from ccvm.report.results import Case, Outcome, Suite
from ccvm.require import Requirements

CASE_NAME = "nix-build"
LOG_TAIL_LINES = 40


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    flake: str
    targets: tuple[BuildTarget, ...]
    timeout_s: float  # one target's `nix build`
    requirements: Requirements = Requirements()  # whether a missing nix fails (--require nix, CI) or skips
    egress_check: bool = True
    connect_timeout_s: float = CONNECT_TIMEOUT_S


def suite_name(target: BuildTarget) -> str:
    return f"build.{target.name}"


def _suite(target: BuildTarget, case: Case, installable: str) -> Suite:
    return Suite(
        name=suite_name(target),
        cases=[case],
        properties={"installable": installable, "system": target.system},
    )


def _not_built(target: BuildTarget, installable: str, reason: str, *, fail: bool) -> Suite:
    outcome = Outcome.FAIL if fail else Outcome.SKIP
    return _suite(target, Case(name=CASE_NAME, outcome=outcome, message=reason), installable)


def _preflight_failure(check: Preflight) -> Case:
    if check.eval_error:
        return Case(
            name=CASE_NAME,
            outcome=Outcome.FAIL,
            seconds=check.seconds,
            message=check.message,
            details=error_text(check.eval_details),
        )
    return Case(
        name=CASE_NAME,
        outcome=Outcome.FAIL,
        seconds=check.seconds,
        message=check.blocked[0].message,
        details="\n".join(b.message for b in check.blocked),
    )


def build_failure_case(nix: Nix, stderr: str, returncode: int | None, seconds: float, timeout_s: float) -> Case:
    """A failed `nix build`: which builder failed, Nix's error, and the log tail."""
    failed = failed_derivations(stderr)
    too_old = needs_newer_nix(nix.version, stderr)
    if returncode is None:
        message = f"nix build timed out after {timeout_s:g}s and was stopped"
    elif too_old:
        message = too_old
    elif failed:
        message = f"builder for {store_name(failed[0])} failed" + (
            f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        )
    else:
        message = f"nix build failed: {error_summary(stderr)}"
    parts = [error_text(stderr)]
    for drv in failed:
        parts.append(f"--- nix log {drv} (last {LOG_TAIL_LINES} lines) ---\n{log_tail(nix, drv, LOG_TAIL_LINES)}")
    return Case(name=CASE_NAME, outcome=Outcome.FAIL, seconds=seconds, message=message, details="\n".join(parts))


def _out_paths(stdout: str) -> str:
    try:
        built = json.loads(stdout)
    except json.JSONDecodeError:
        return stdout.strip()
    return "\n".join(path for item in built for path in item.get("outputs", {}).values())


def build_one(nix: Nix, target: BuildTarget, options: BuildOptions) -> Suite:
    installable = target.installable(options.flake)
    started = time.monotonic()
    check = preflight(
        nix, installable, options.connect_timeout_s, probe=options.egress_check, eval_timeout_s=options.timeout_s
    )
    if not check.ok:
        return _suite(target, _preflight_failure(check), installable)
    result = nix.run("build", "--no-link", "--json", "--keep-going", installable, timeout_s=options.timeout_s)
    seconds = time.monotonic() - started
    if result.ok:
        case = Case(name=CASE_NAME, outcome=Outcome.PASS, seconds=seconds, output=_out_paths(result.stdout))
    else:
        case = build_failure_case(nix, result.stderr, result.returncode, seconds, options.timeout_s)
    return _suite(target, case, installable)


def unlockable(nix: Nix, options: BuildOptions) -> Case | None:
    """The flake's inputs, fetched and locked once (no lock file written); the failed case when they cannot be.

    Every target needs them: without this, each would fail alike after evaluations of its own (a dry run,
    then an uncached one), seconds apiece when a download retries, for a flake with many targets minutes.
    """
    started = time.monotonic()
    result = nix.run("flake", "metadata", "--json", "--no-write-lock-file", options.flake, timeout_s=options.timeout_s)
    if result.ok:
        return None
    if result.returncode is None:
        message = f"nix flake metadata timed out after {options.timeout_s:g}s (fetching the flake's inputs)"
    else:
        message = needs_newer_nix(nix.version, result.stderr) or (
            f"the flake's inputs cannot be fetched or locked: {error_summary(result.stderr)}"
        )
    seconds = time.monotonic() - started
    return Case(
        name=CASE_NAME, outcome=Outcome.FAIL, seconds=seconds, message=message, details=error_text(result.stderr)
    )


def run_builds(nix: Nix | None, options: BuildOptions, progress: Progress) -> list[Suite]:
    suites = []
    platforms = host_platforms(nix) if nix is not None else None
    inputs: Case | None = None  # set when the inputs cannot be locked: every target to build fails with it
    first_failed = ""  # the target that carries the inputs' failure in full
    if nix is not None and platforms is not None and any(platforms.can_build(t.system) for t in options.targets):
        progress.note(f"nix flake metadata {options.flake}: the inputs every target needs, fetched and locked once")
        inputs = unlockable(nix, options)
    for target in options.targets:
        installable = target.installable(options.flake)
        started = time.monotonic()
        if nix is None or platforms is None:
            reason = options.requirements.message(missing_reason(), NIX)
            suite = _not_built(target, installable, reason, fail=options.requirements.requires(NIX))
        elif not platforms.can_build(target.system):
            suite = _not_built(target, installable, platforms.why_not(target.system), fail=False)
        elif inputs is not None:
            suite = _suite(target, inputs, installable)
            if not first_failed:  # the first: the time it took and Nix's output are its own
                first_failed, started = suite.name, started - inputs.seconds
                inputs = replace(inputs, seconds=0.0, details=f"Nix's output is with {first_failed}")
        else:
            progress.started(suite_name(target), f"nix build {installable}")
            suite = build_one(nix, target, options)
        progress.finished(suite, time.monotonic() - started)
        suites.append(suite)
    return suites
