"""The host suite's contract cases, in groups; each works in both dry-run
styles where it can, and is skipped with its reason where it cannot."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

from ccvm.checks.host.modes import ccvm_option_cases, share_cases
from ccvm.checks.host.sandbox import CaseFailed, CaseSkipped, Report, Sandbox, expect, one_line_error
from ccvm.launcher.embedded import HARD_ARGS
from ccvm.matrix.launcher import ArgvFormat, DryRunStyle

Check = Callable[[], None]


def plan_only(box: Sandbox, what: str) -> None:
    if box.style is not DryRunStyle.PLAN:
        raise CaseSkipped(f"{what}: only a JSON plan reports it (this dry run prints a scratch directory)")


def _debug_env(box: Sandbox) -> dict[str, str]:
    """ccvm vm keeps its scratch directory in debug mode, so the files it staged can be read."""
    return {"CCVM_DEBUG": "1"} if box.style is DryRunStyle.PLAN else {}


def _marker_free(box: Sandbox, where: str, data: bytes | str) -> None:
    origins = box.markers.origins_in(data)
    verb = "appears" if len(origins) == 1 else "appear"
    expect(not origins, f"the secret from {' and the secret from '.join(origins)} {verb} in {where}")


def _is_staged_secret(box: Sandbox, data: bytes, mode: int) -> bool:
    """A byte-exact private copy of a secret file is staging, not a leak."""
    if mode & 0o077:
        return False
    sources = [box.home_path(tilde) for tilde in box.launcher.secrets.files]
    return any(path.is_file() and path.read_bytes() == data for path in sources)


# -- secrets ----------------------------------------------------------------------


def secrets_cases(box: Sandbox) -> dict[str, Check]:
    def not_in_output():
        report = box.dry(*box.launcher.program, "x")
        _marker_free(box, "stdout" + (" (the plan)" if report.plan else ""), report.result.stdout)
        _marker_free(box, "stderr", report.result.stderr)

    def not_in_staged_files():
        report = box.dry(*box.launcher.program, "x", env=_debug_env(box))
        if report.scratch_mode is None:
            raise CaseSkipped("the dry run left no scratch directory to look into")
        for entry in report.files:
            if not _is_staged_secret(box, entry.data, entry.mode):
                _marker_free(box, f"the staged file {entry.relative}", entry.data)

    def not_in_qemu_argv():
        plan_only(box, "the QEMU argv")
        _marker_free(box, "the QEMU argv", "\0".join(box.dry(*box.launcher.program).plan["qemu_argv"]))

    def not_in_cmdline():
        plan_only(box, "the kernel command line")
        plan = box.dry(*box.launcher.program).plan
        argv = plan["qemu_argv"]
        appends = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "-append"]
        _marker_free(box, "the kernel command line", "\0".join([str(plan.get("kernel_cmdline", "")), *appends]))

    def not_in_qemu_env():
        plan_only(box, "QEMU's environment")
        env = box.dry(*box.launcher.program).plan.get("qemu_env")
        expect(isinstance(env, dict), "the plan does not show the environment handed to QEMU")
        _marker_free(box, "the environment handed to QEMU", json.dumps(env))

    def not_in_files():
        box.dry(*box.launcher.program)
        for path in sorted(box.cwd.rglob("*")):
            if path.is_file():
                _marker_free(box, f"{path.relative_to(box.cwd)} in the working directory", path.read_bytes())

    return {
        "not-in-plan-or-output": not_in_output,
        "not-in-staged-files": not_in_staged_files,
        "not-in-qemu-argv": not_in_qemu_argv,
        "not-in-kernel-cmdline": not_in_cmdline,
        "not-in-qemu-environment": not_in_qemu_env,
        "not-in-working-directory-or-reports": not_in_files,
    }


# -- staging ----------------------------------------------------------------------


def _staged_entry(plan: dict, guest_path: str) -> dict:
    found = [f for f in plan.get("staged", []) if f.get("guest_path") == guest_path]
    names = [f.get("guest_path") for f in plan.get("staged", [])]
    expect(len(found) == 1, f"{guest_path} is not staged exactly once (staged: {names})")
    return found[0]


def _staged_case(box: Sandbox, tilde: str) -> Check:
    source = box.home_path(tilde)

    def check():
        report = box.dry(*box.launcher.program)
        if report.plan is not None:
            entry = _staged_entry(report.plan, tilde)
            size = source.stat().st_size
            expect(entry.get("size") == size, f"size {entry.get('size')}, the source has {size}")
            expect(entry.get("mode") == "0600", f"mode {entry.get('mode')}, expected 0600")
            expect("content" not in entry, "the plan carries file content")
            return
        copies = [f for f in report.files if f.data == source.read_bytes()]
        expect(copies != [], f"no copy of {tilde} in the scratch directory")
        for copy in copies:
            expect(copy.mode == 0o600, f"the copy {copy.relative} has mode {copy.mode:04o}, expected 0600")

    return check


def _staging_names(box: Sandbox) -> dict[str, Check]:
    cases: dict[str, Check] = {}
    for tilde in (*box.launcher.config_files, *box.launcher.secrets.files):
        stem = Path(tilde).name.lstrip(".").removesuffix(".json")
        name = f"{stem}-staged-0600" if f"{stem}-staged-0600" not in cases else f"staged-0600:{tilde}"
        cases[name] = _staged_case(box, tilde)
    return cases


def _private_scratch(box: Sandbox) -> Check:
    def check():
        report: Report = box.dry(*box.launcher.program, env=_debug_env(box))
        expect(report.scratch_mode is not None, "the dry run kept no scratch directory to look at")
        expect(report.scratch_mode == 0o700, f"scratch directory mode {report.scratch_mode:04o}, expected 0700")
        for entry in report.files:
            expect(not entry.mode & 0o077, f"{entry.relative} has mode {entry.mode:04o}: others can read it")

    return check


def _scratch_removed(box: Sandbox) -> Check:
    def check():
        plan_only(box, "removing the scratch directory")
        report = box.dry(*box.launcher.program)
        expect(report.scratch_mode is None, "the scratch directory outlived the run")

    return check


def _host_untouched(box: Sandbox) -> Check:
    def check():
        paths = [p for p in sorted(box.home.rglob("*")) if p.is_file()]
        before = {p: (p.read_bytes(), p.stat().st_mtime_ns, stat.S_IMODE(p.stat().st_mode)) for p in paths}
        box.dry(*box.launcher.program)
        after = {p: (p.read_bytes(), p.stat().st_mtime_ns, stat.S_IMODE(p.stat().st_mode)) for p in paths}
        changed = sorted(str(p.relative_to(box.home)) for p in paths if before[p] != after.get(p))
        expect(not changed, f"the run changed the host's files: ~/{', ~/'.join(changed)}")

    return check


def _missing_config(box: Sandbox) -> Check:
    def check():
        empty = box.root / "empty-home"
        empty.mkdir(exist_ok=True)
        report = box.dry(*box.launcher.program, env={"HOME": str(empty)})
        if report.plan is not None:
            homes = [f for f in report.plan.get("staged", []) if str(f.get("guest_path", "")).startswith("~/")]
            expect(homes == [], f"with no configuration, files were staged: {homes}")

    return check


def _malformed_settings(box: Sandbox) -> Check:
    def check():
        plan_only(box, "rejecting a malformed settings.json (ccvm vm's rule)")
        bad_home = box.root / "bad-home"
        (bad_home / ".claude").mkdir(parents=True, exist_ok=True)
        bad = bad_home / ".claude" / "settings.json"
        bad.write_text('{"model": \n')
        one_line_error(box.launch(*box.launcher.program, env={"HOME": str(bad_home)}), "settings.json")
        expect(bad.read_text() == '{"model": \n', "the malformed settings file was changed")

    return check


def staging_cases(box: Sandbox) -> dict[str, Check]:
    return {
        **_staging_names(box),
        "scratch-private-0700": _private_scratch(box),
        "scratch-removed-after-run": _scratch_removed(box),
        "host-config-untouched": _host_untouched(box),
        "missing-config-is-fine": _missing_config(box),
        "malformed-settings-rejected": _malformed_settings(box),
    }


# -- argv -------------------------------------------------------------------------

ARGV_CASES = {
    "spaces": "two words",
    "quotes": HARD_ARGS[1],
    "dollar-vars": HARD_ARGS[2],
    "backslashes": HARD_ARGS[3],
    "newline": "new\nline",
    "empty-string": "",
    "non-ascii": HARD_ARGS[6],
    "leading-dashes": "--flag",
    "launcher-option-lookalike": "--shell",
}


def _verbatim(box: Sandbox, words: tuple[str, ...], *, lookalike: bool = False) -> Check:
    def check():
        if box.launcher.dry_run.argv_format is ArgvFormat.LINES and any("\n" in w for w in words):
            raise CaseSkipped("argv_format: lines cannot carry a newline inside a word")
        if lookalike and not box.launcher.program:
            raise CaseSkipped(
                "the declaration names no program, so a word after it cannot be told from the wrapper's options"
            )
        report = box.dry(*box.launcher.program, *words)
        if report.argv is None:
            if box.style is DryRunStyle.PLAN:
                raise CaseFailed(f"the plan has {report.argv_missing}")
            raise CaseSkipped(report.argv_missing)
        want = (*box.launcher.program, *words)
        expect(report.argv == want, f"the dry run's argv is {list(report.argv)!r}, expected {list(want)!r}")
        if report.plan is not None:
            expect(report.plan.get("mode") == "run", f"program arguments changed the mode to {report.plan.get('mode')}")

    return check


def argv_cases(box: Sandbox) -> dict[str, Check]:
    cases = {name: _verbatim(box, (word,), lookalike=word == "--shell") for name, word in ARGV_CASES.items()}
    cases["all-at-once"] = _verbatim(box, HARD_ARGS)

    def after_double_dash():
        plan_only(box, "ccvm vm's `--` handling")
        argv = box.dry("--", "--prog", "-x").argv
        expect(argv == ("--prog", "-x"), f"-- did not end the options: {argv!r}")

    cases["after-double-dash"] = after_double_dash
    return cases


def mode_cases(box: Sandbox) -> dict[str, Check]:
    return {**share_cases(box), **ccvm_option_cases(box)}


GROUPS: dict[str, Callable[[Sandbox], dict[str, Check]]] = {
    "secrets": secrets_cases,
    "staging": staging_cases,
    "argv": argv_cases,
    "modes": mode_cases,
}
