"""`nix flake check` as JUnit: one case per check, plus one for the flake.

Nix 2.x builds only the checks of the host's own system; checks of other
systems are evaluated by it but reported skipped here.  The run must be
warning-clean: each evaluation warning Nix prints (ccvm.checks.nix.eval_warnings)
is a failing case of its own, unless matrix/builds.yaml allows them.  With
``--keep-going --show-trace`` Nix reports every evaluation error with the
check it belongs to ("while checking the derivation 'checks.S.N'"), and
every failed builder by its .drv path, which we map back to the check by
the check's drvPath.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from ccvm.checks.nix import eval_warnings
from ccvm.checks.nix.egress import CONNECT_TIMEOUT_S, preflight
from ccvm.nixtool import (
    NIX,
    QUERY_TIMEOUT_S,
    Nix,
    error_summary,
    failed_derivations,
    host_platforms,
    log_tail,
    missing_reason,
    needs_newer_nix,
    store_name,
    valid_paths,
)
from ccvm.report.progress import Progress
from ccvm.report.results import Case, Outcome, Suite
from ccvm.require import Requirements

FLAKE_SUITE = "flake-check.evaluate"
WARNING_SUITE = "flake-check.warning"  # one suite per warning: flake-check.warning.<slug>
CHECK_CASE = "check"
WARNING_CASE = "warning"
ALLOW_HINT = "matrix/builds.yaml: flake_check: {warnings: allow}"
LOG_TAIL_LINES = 40
LIST_CHECKS = "builtins.mapAttrs (system: checks: builtins.attrNames checks)"
DRV_PATHS = (
    "builtins.mapAttrs (name: check: let r = builtins.tryEval check.drvPath; in if r.success then r.value else null)"
)

_CHECK_OF_ERROR = re.compile(r"while checking the derivation 'checks\.([^.']+)\.([^']+)'")
_DEPENDENCY_FAILED = re.compile(r"dependenc(?:y|ies) of derivation '(/nix/store/[^']+\.drv)' failed to build")
_BUILD_SUMMARY = re.compile(r"^error: build of .* failed$|^error: some errors were encountered during the evaluation$")


@dataclass(frozen=True, kw_only=True)
class CheckOptions:
    flake: str
    timeout_s: float
    requirements: Requirements = Requirements()  # whether a missing nix fails (--require nix, CI) or skips
    egress_check: bool = True
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    warnings_fail: bool = True  # each evaluation warning is a failing case (matrix/builds.yaml flake_check.warnings)


@dataclass(kw_only=True)
class CheckOutput:
    """What `nix flake check` said, sorted out."""

    eval_errors: dict[tuple[str, str], str] = field(default_factory=dict)  # (system, name) -> error block
    other_errors: list[str] = field(default_factory=list)  # not tied to one check
    failed_builders: list[str] = field(default_factory=list)  # .drv paths
    dependency_failed: set[str] = field(default_factory=set)  # .drv paths whose inputs failed


def error_blocks(stderr: str) -> list[str]:
    """Each 'error…' line with the indented or blank lines under it."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in stderr.splitlines():
        if line.startswith("error"):
            current = [line]
            blocks.append(current)
        elif current is not None and (not line.strip() or line.startswith(" ")):
            current.append(line)
        else:
            current = None
    return ["\n".join(block).rstrip() for block in blocks]


def parse_check_output(stderr: str) -> CheckOutput:
    parsed = CheckOutput()
    for block in error_blocks(stderr):
        owner = _CHECK_OF_ERROR.search(block)
        dependency = _DEPENDENCY_FAILED.search(block)
        builders = failed_derivations(block)
        if builders:
            parsed.failed_builders.extend(d for d in builders if d not in parsed.failed_builders)
        elif dependency:
            parsed.dependency_failed.add(dependency.group(1))
        elif owner:
            parsed.eval_errors[(owner.group(1), owner.group(2))] = block
        elif not _BUILD_SUMMARY.match(block.splitlines()[0].strip()):
            parsed.other_errors.append(block)
    return parsed


def list_checks(nix: Nix, flake: str, timeout_s: float = QUERY_TIMEOUT_S) -> tuple[dict[str, list[str]], str, str]:
    """{system: [check names]}, '', ''; or {}, why the listing failed (one line) and Nix's output.

    The timeout is the command's: on a cold machine evaluation may first fetch nixpkgs.
    """
    args = ("eval", "--json", f"{flake}#checks", "--apply", LIST_CHECKS)
    result = nix.run(*args, timeout_s=timeout_s)
    if not result.ok and result.returncode is not None and "does not provide attribute" not in result.stderr:
        result = nix.run_uncached(*args, timeout_s=timeout_s)  # the real error, not one the evaluation cache remembered
    if result.returncode is None:
        return {}, f"listing the flake's checks timed out after {timeout_s:g}s and was stopped", result.stderr
    if result.ok:
        try:
            return json.loads(result.stdout), "", ""
        except json.JSONDecodeError as exc:
            return {}, f"nix eval printed something that is not JSON: {exc}", result.stdout
    if "does not provide attribute" in result.stderr:
        return {}, "", ""  # a flake without checks
    too_old = needs_newer_nix(nix.version, result.stderr)
    return {}, too_old or f"the flake does not evaluate: {error_summary(result.stderr)}", result.stderr


def check_derivations(
    nix: Nix, flake: str, system: str, names: list[str], timeout_s: float = QUERY_TIMEOUT_S
) -> dict[str, str | None]:
    """{name: drvPath, or None when the check does not evaluate}."""
    result = nix.run("eval", "--json", f"{flake}#checks.{system}", "--apply", DRV_PATHS, timeout_s=timeout_s)
    if result.ok:
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError:
            pass
    if result.returncode is None:
        return dict.fromkeys(names)  # one at a time would only wait that long again for each check
    # An error tryEval cannot catch (a missing attribute, a type error): one check at a time.
    drvs: dict[str, str | None] = {}
    for name in names:
        one = nix.run("eval", "--raw", f"{flake}#checks.{system}.{name}.drvPath", timeout_s=timeout_s)
        drvs[name] = one.stdout.strip() if one.ok else None
    return drvs


def output_paths(nix: Nix, drvs: list[str]) -> dict[str, list[str]]:
    """{drvPath: its output paths}, from `nix show-derivation`."""
    if not drvs:
        return {}
    result = nix.run("show-derivation", *drvs)
    try:
        shown = json.loads(result.stdout) if result.ok else {}
    except json.JSONDecodeError:
        shown = {}
    return {
        drv: [out["path"] for out in info.get("outputs", {}).values() if "path" in out] for drv, info in shown.items()
    }


def _fail(message: str, details: str = "") -> Case:
    return Case(name=CHECK_CASE, outcome=Outcome.FAIL, message=message, details=details)


def _eval_failure(nix: Nix, block: str) -> str:
    """Why a check does not evaluate: this Nix being too old for it, or Nix's own error."""
    return needs_newer_nix(nix.version, block) or f"does not evaluate: {error_summary(block)}"


class Judge:
    """Decides each check's case from the run's output and the store."""

    def __init__(
        self,
        nix: Nix,
        parsed: CheckOutput,
        built: set[str],
        outs: dict[str, list[str]],
        returncode: int | None,
        timeout_s: float,
    ) -> None:
        self.nix, self.parsed, self.built, self.outs = nix, parsed, built, outs
        self.returncode, self.timeout_s = returncode, timeout_s

    def builder_logs(self, drvs: list[str]) -> str:
        return "\n".join(
            f"--- nix log {drv} (last {LOG_TAIL_LINES} lines) ---\n{log_tail(self.nix, drv, LOG_TAIL_LINES)}"
            for drv in drvs
        )

    def case(self, system: str, name: str, drv: str | None) -> Case:
        block = self.parsed.eval_errors.get((system, name))
        if block is not None or drv is None:
            message = _eval_failure(self.nix, block) if block else "does not evaluate: its drvPath does not evaluate"
            return _fail(message, block or "")
        if drv in self.parsed.failed_builders:
            return _fail(f"builder for {store_name(drv)} failed", self.builder_logs([drv]))
        outs = self.outs.get(drv, [])
        if outs and all(out in self.built for out in outs):
            return Case(name=CHECK_CASE, outcome=Outcome.PASS, output="\n".join(outs))
        if drv in self.parsed.dependency_failed:
            names = ", ".join(store_name(d) for d in self.parsed.failed_builders) or "see the flake case"
            return _fail(f"a dependency failed to build ({names})", self.builder_logs(self.parsed.failed_builders))
        if self.returncode is None:
            return _fail(f"nix flake check timed out after {self.timeout_s:g}s before this check was built")
        return _fail("nix flake check stopped before building this check; see the flake case")


def _check_suite(system: str, name: str, case: Case) -> Suite:
    return Suite(name=f"flake-check.{system}.{name}", cases=[case], properties={"system": system, "check": name})


def _flake_suite(case: Case, flake: str) -> Suite:
    return Suite(name=FLAKE_SUITE, cases=[case], properties={"flake": flake})


def _blocked_cases(nix: Nix, drvs: dict[str, str | None], options: CheckOptions) -> dict[str, Case]:
    """Checks whose closure needs a download from a host that cannot be reached."""
    blocked = {}
    for name, drv in drvs.items():
        if drv is None:
            continue
        check = preflight(nix, drv, options.connect_timeout_s, eval_timeout_s=options.timeout_s)
        if check.blocked:
            blocked[name] = _fail(check.blocked[0].message, "\n".join(b.message for b in check.blocked))
    return blocked


def run_flake_check(nix: Nix | None, options: CheckOptions, progress: Progress) -> list[Suite]:
    if nix is None:
        reason = options.requirements.message(missing_reason(), NIX)
        outcome = options.requirements.outcome(NIX)
        return [_flake_suite(Case(name="nix-flake-check", outcome=outcome, message=reason), options.flake)]
    started = time.monotonic()
    system = host_platforms(nix).system
    progress.started(FLAKE_SUITE, f"nix flake check {options.flake}")
    checks, list_error, list_details = list_checks(nix, options.flake, options.timeout_s)
    if list_error:
        case = Case(
            name="nix-flake-check",
            outcome=Outcome.FAIL,
            seconds=time.monotonic() - started,
            message=list_error,
            details=list_details,
        )
        suite = _flake_suite(case, options.flake)
        progress.finished(suite, case.seconds)
        return [suite]
    local = checks.get(system, [])
    drvs = check_derivations(nix, options.flake, system, local, options.timeout_s) if local else {}
    blocked = _blocked_cases(nix, drvs, options) if options.egress_check else {}
    if blocked:
        return _report_blocked(checks, system, blocked, options, started, progress)
    result = nix.run("flake", "check", "--keep-going", "--show-trace", options.flake, timeout_s=options.timeout_s)
    seconds = time.monotonic() - started
    parsed = parse_check_output(result.stderr)
    outs = output_paths(nix, [d for d in drvs.values() if d])
    judge = Judge(
        nix,
        parsed,
        valid_paths(nix, [p for paths in outs.values() for p in paths]),
        outs,
        result.returncode,
        options.timeout_s,
    )
    found = eval_warnings.sort_output(result.stderr)
    evaluate = whole_run_case(
        result.returncode, result.stderr, parsed, seconds, options.timeout_s, nix_version=nix.version
    )
    evaluate.output = _evaluate_output(found, options.warnings_fail)
    if found.offline:
        progress.note(found.offline_summary())
    suites = [
        _flake_suite(evaluate, options.flake),
        *_check_suites(checks, system, judge, drvs),
        *(_warning_suites(found.warnings) if options.warnings_fail else []),
    ]
    progress.finished(suites[0], seconds)
    return suites


def _check_suites(checks: dict[str, list[str]], system: str, judge: Judge, drvs: dict[str, str | None]) -> list[Suite]:
    suites = []
    for check_system, names in sorted(checks.items()):
        for name in names:
            if check_system != system:
                case = _other_system_case(judge.nix, judge.parsed, check_system, name, system)
            else:
                case = judge.case(check_system, name, drvs.get(name))
            suites.append(_check_suite(check_system, name, case))
    return suites


def _warning_suites(warnings: list[eval_warnings.EvalWarning]) -> list[Suite]:
    """One failing suite per distinct evaluation warning, quoting it."""
    suites: list[Suite] = []
    names: set[str] = set()
    for warning in warnings:
        base = name = f"{WARNING_SUITE}.{eval_warnings.slug(warning)}"
        number = 1
        while name in names:  # two warnings alike in their first words
            number += 1
            name = f"{base}-{number}"
        names.add(name)
        times = f" (printed {warning.count} times)" if warning.count > 1 else ""
        case = Case(
            name=WARNING_CASE,
            outcome=Outcome.FAIL,
            message=f"{warning.text}{times}",
            details=f"nix flake check must be warning-clean: fix the flake, or allow warnings ({ALLOW_HINT})",
        )
        suites.append(Suite(name=name, cases=[case], properties={"kind": warning.kind, "count": str(warning.count)}))
    return suites


def _evaluate_output(found: eval_warnings.Sorted, warnings_fail: bool) -> str:
    """What the evaluate case names but does not count: offline noise, notices, allowed warnings."""
    lines = [found.offline_summary()] if found.offline else []
    if found.warnings and not warnings_fail:
        lines.append(f"warnings allowed ({ALLOW_HINT}), not counted:")
        lines += [f"  {w.text}" for w in found.warnings]
    if found.notices:
        lines.append("notices, not counted:")
        lines += [f"  {notice}" for notice in found.notices]
    return "\n".join(lines)


def whole_run_case(
    returncode: int | None,
    stderr: str,
    parsed: CheckOutput,
    seconds: float,
    timeout_s: float,
    *,
    nix_version: str = "this Nix",
) -> Case:
    """The whole run: evaluation of every output, and errors tied to no single check."""
    if returncode is None:
        return Case(
            name="nix-flake-check",
            outcome=Outcome.FAIL,
            seconds=seconds,
            message=f"nix flake check timed out after {timeout_s:g}s and was stopped",
        )
    if parsed.other_errors:
        too_old = needs_newer_nix(nix_version, parsed.other_errors[0])
        return Case(
            name="nix-flake-check",
            outcome=Outcome.FAIL,
            seconds=seconds,
            message=too_old or f"evaluation error: {error_summary(parsed.other_errors[0])}",
            details="\n\n".join(parsed.other_errors),
        )
    if returncode != 0 and not (parsed.eval_errors or parsed.failed_builders or parsed.dependency_failed):
        # Nix failed, yet said nothing this parser ties to a check: never let that pass.
        return Case(
            name="nix-flake-check",
            outcome=Outcome.FAIL,
            seconds=seconds,
            message=f"nix flake check exited {returncode}: {error_summary(stderr)}",
            details=stderr,
        )
    return Case(name="nix-flake-check", outcome=Outcome.PASS, seconds=seconds)


def _other_system_case(nix: Nix, parsed: CheckOutput, check_system: str, name: str, system: str) -> Case:
    block = parsed.eval_errors.get((check_system, name))
    if block:
        return _fail(_eval_failure(nix, block), block)
    return Case(
        name=CHECK_CASE,
        outcome=Outcome.SKIP,
        message=f"nix flake check builds only this host's system ({system}); {check_system} was only evaluated",
    )


def _report_blocked(
    checks: dict[str, list[str]],
    system: str,
    blocked: dict[str, Case],
    options: CheckOptions,
    started: float,
    progress: Progress,
) -> list[Suite]:
    seconds = time.monotonic() - started
    first = next(iter(blocked.values()))
    flake_case = Case(
        name="nix-flake-check",
        outcome=Outcome.FAIL,
        seconds=seconds,
        message=f"not run: {first.message}",
        details="\n".join(c.details for c in blocked.values()),
    )
    suites = [_flake_suite(flake_case, options.flake)]
    for check_system, names in sorted(checks.items()):
        for name in names:
            if check_system == system and name in blocked:
                case = blocked[name]
            else:
                case = Case(
                    name=CHECK_CASE,
                    outcome=Outcome.SKIP,
                    message="not run: nix flake check was not started because a download is blocked",
                )
            suites.append(_check_suite(check_system, name, case))
    progress.finished(suites[0], seconds)
    return suites
