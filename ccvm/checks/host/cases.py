"""The host suite's contract cases, in groups; each works in both dry-run
styles where it can, and is skipped with its reason where it cannot."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

from ccvm.checks.host.modes import ccvm_option_cases, share_cases
from ccvm.checks.host.sandbox import (
    CaseFailed,
    CaseSkipped,
    Report,
    Sandbox,
    ScratchFile,
    expect,
    one_line_error,
)
from ccvm.launcher.embedded import HARD_ARGS
from ccvm.matrix.launcher import ArgvFormat, DryRunStyle, Staged

Check = Callable[[], None]


def plan_only(box: Sandbox, what: str) -> None:
    if box.style is not DryRunStyle.PLAN:
        raise CaseSkipped(f"{what}: only a JSON plan reports it (this dry run prints a scratch directory)")


def ccvm_vm_rule(box: Sandbox, rule: str) -> None:
    """A rule of ccvm vm's own, checked on a launcher whose dry run prints ccvm vm's plan only."""
    if box.style is not DryRunStyle.PLAN:
        raise CaseSkipped(f"{rule} is ccvm vm's rule, not every launcher's (this dry run prints no ccvm plan)")


def _debug_env(box: Sandbox) -> dict[str, str]:
    """ccvm vm keeps its scratch directory in debug mode, so the files it staged can be read."""
    return {"CCVM_DEBUG": "1"} if box.style is DryRunStyle.PLAN else {}


def _marker_free(box: Sandbox, where: str, data: bytes | str) -> None:
    origins = box.markers.origins_in(data)
    verb = "appears" if len(origins) == 1 else "appear"
    expect(not origins, f"the secret from {' and the secret from '.join(origins)} {verb} in {where}")


def _copy_of_secret(box: Sandbox, data: bytes) -> str | None:
    """The ~/ path of the secret file ``data`` is a byte-exact copy of, or None."""
    for tilde in box.launcher.secrets.files:
        path = box.home_path(tilde)
        if path.is_file() and path.read_bytes() == data:
            return tilde
    return None


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
            copy_of = _copy_of_secret(box, entry.data)
            if copy_of is None:
                _marker_free(box, f"the staged file {entry.relative}", entry.data)
            else:  # a byte-exact copy that no other user can read is staging, not a leak
                expect(entry.private, f"the staged file {entry.relative} is a copy of {copy_of} {_readable(entry)}")

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


def _readable(entry: ScratchFile) -> str:
    return f"that others can read (mode {entry.mode:04o}, and no directory on its way keeps them out)"


def _plan_entries(plan: dict, tilde: str) -> list[dict]:
    found = [f for f in plan.get("staged", []) if f.get("guest_path") == tilde]
    expect(all("content" not in f for f in found), "the plan carries file content")
    return found


def _plan_staging(entries: list[dict], tilde: str, source: Path, how: Staged | None) -> None:
    """What a plan's `staged` list says about one file of the home, against what is declared."""
    if how is Staged.NEVER:
        expect(entries == [], f"{tilde} is declared never staged, and the plan stages it")
        return
    if how is not None:
        expect(len(entries) == 1, f"{tilde} is not staged exactly once ({len(entries)} entries in the plan)")
        size = source.stat().st_size
        expect(entries[0].get("size") == size, f"size {entries[0].get('size')}, the source has {size}")
    if how is Staged.OWNER_ONLY or (how is None and entries):  # undeclared: only a secret gets here
        for entry in entries:
            mode = str(entry.get("mode"))
            owner_only = mode.isdigit() and not int(mode, 8) & 0o077
            expect(owner_only, f"{tilde} is staged with mode {mode}: others can read it")


def _scratch_staging(report: Report, tilde: str, source: Path, how: Staged | None) -> None:
    """What a scratch directory holds of one file of the home (byte-exact copies), against what is declared."""
    copies = [f for f in report.files if f.data == source.read_bytes()]
    if how is Staged.NEVER:
        names = ", ".join(copy.relative for copy in copies)
        expect(copies == [], f"{tilde} is declared never staged, and the scratch directory holds a copy: {names}")
        return
    if how is not None:
        expect(copies != [], f"no copy of {tilde} in the scratch directory")
    if how is not Staged.COPY:  # owner-only, or an undeclared secret's copies
        for copy in copies:
            expect(copy.private, f"the copy {copy.relative} of {tilde} is one {_readable(copy)}")


def _staged_case(box: Sandbox, tilde: str, how: Staged | None) -> Check:
    source = box.home_path(tilde)

    def check():
        report = box.dry(*box.launcher.program)
        if report.plan is not None:
            _plan_staging(_plan_entries(report.plan, tilde), tilde, source, how)
        else:
            _scratch_staging(report, tilde, source, how)

    return check


def _undeclared_config(tilde: str) -> Check:
    def check():
        raise CaseSkipped(
            f"whether {tilde} is staged is not declared (config_files: - {{path: {tilde}, staged: copy}}, "
            "owner-only or never); a file that is not a secret keeps the mode the launcher gives it"
        )

    return check


CASE_SUFFIX = {
    Staged.NEVER: "never-staged",
    Staged.OWNER_ONLY: "staged-owner-only",
    Staged.COPY: "staged",
    None: "owner-only-if-staged",  # an undeclared secret
}


def _staging_names(box: Sandbox) -> dict[str, Check]:
    """One case per file of the home: as declared (secrets.files, config_files), else a secret's universal rule."""
    cases: dict[str, Check] = {}
    secrets = box.launcher.secrets.files
    for tilde in (*box.launcher.config_files, *secrets):
        how = box.launcher.staging(tilde)
        stem = Path(tilde).name.lstrip(".").removesuffix(".json")
        suffix = "staging" if how is None and tilde not in secrets else CASE_SUFFIX[how]
        name = f"{stem}-{suffix}" if f"{stem}-{suffix}" not in cases else f"{suffix}:{tilde}"
        cases[name] = _undeclared_config(tilde) if suffix == "staging" else _staged_case(box, tilde, how)
    return cases


def _private_scratch(box: Sandbox) -> Check:
    def check():
        ccvm_vm_rule(box, "a 0700 scratch directory with every file in it private")
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
        ccvm_vm_rule(box, "a launch with no configuration at all")
        empty = box.root / "empty-home"
        empty.mkdir(exist_ok=True)
        report = box.dry(*box.launcher.program, env={"HOME": str(empty)})
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
