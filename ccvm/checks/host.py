"""The host dry-run suite: the launcher's whole contract, checked without
booting anything, through ``CCVM_DRYRUN=1``.

It drives any wrapper that honours CCVM_DRYRUN and prints the same plan
(default: this project's ``ccvm vm``).  Each rule is one Case; a wrapper
that breaks any rule (leaks a secret, mangles argv, ignores precedence)
fails the suite.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ccvm.checks.boot.scenarios import HARD_ARGS
from ccvm.files import cache_root
from ccvm.processes import Completed, run
from ccvm.report.results import Case, Outcome, Suite
from ccvm.text import last_line

CASE_TIMEOUT_S = 120.0
SECRET = "ccvm-planted-secret-7f3a9c"  # planted in the credentials file
ENV_SECRET = "ccvm-planted-env-secret-52e1"  # planted in the caller's environment
SETTINGS_TEXT = '{"model": "stub-model", "theme": "dark"}\n'
CREDENTIALS_TEXT = '{"token": "' + SECRET + '"}\n'


class CaseFailed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CaseFailed(message)


@dataclass(frozen=True, kw_only=True)
class Sandbox:
    """A private home (with planted configuration) and working directory."""

    root: Path
    wrapper: tuple[str, ...]
    matrix: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def config(self) -> Path:
        return self.home / ".claude"

    @property
    def cwd(self) -> Path:
        return self.root / "work"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CCVM_")}
        env.update(
            HOME=str(self.home),
            XDG_CACHE_HOME=str(cache_root().parent),
            CCVM_MATRIX=str(self.matrix),
            CCVM_DRYRUN="1",
            ANTHROPIC_API_KEY=ENV_SECRET,
        )
        env.update(extra or {})
        return env

    def launch(self, *args: str, env: dict[str, str] | None = None) -> Completed:
        return run([*self.wrapper, *args], timeout_s=CASE_TIMEOUT_S, cwd=str(self.cwd), env=self.env(env))


def make_sandbox(parent: Path, wrapper: tuple[str, ...], matrix: Path) -> Sandbox:
    box = Sandbox(root=Path(tempfile.mkdtemp(prefix="ccvm-host-", dir=parent)), wrapper=wrapper, matrix=matrix)
    box.config.mkdir(parents=True)
    box.cwd.mkdir()
    (box.config / "settings.json").write_text(SETTINGS_TEXT)
    (box.config / ".credentials.json").write_text(CREDENTIALS_TEXT)
    os.chmod(box.config / ".credentials.json", 0o600)
    (box.cwd / "project-file.txt").write_text("host file\n")
    return box


def plan_of(result: Completed, *, keep_scratch: bool = False) -> dict:
    expect(result.returncode == 0, f"dry run exited {result.returncode}: {last_line(result.stderr)}")
    try:
        plan = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise CaseFailed(f"dry run did not print a JSON plan ({exc.msg} at line {exc.lineno})") from None
    expect(isinstance(plan, dict) and "qemu_argv" in plan, "the plan has no qemu_argv")
    scratch = plan.get("scratch") if isinstance(plan.get("scratch"), dict) else {}
    if scratch.get("kept") and not keep_scratch:
        # Debug mode keeps the scratch (staged credentials included): remove what we caused.
        shutil.rmtree(str(scratch.get("path", "")), ignore_errors=True)
    return plan


def _one_line_error(result: Completed, naming: str) -> None:
    expect(result.returncode == 2, f"expected exit status 2, got {result.returncode}")
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    expect(len(lines) == 1, f"expected one error line, got {len(lines)}: {result.stderr.strip()[:300]!r}")
    expect("Traceback" not in result.stderr, "a traceback reached the user")
    expect(naming in lines[0], f"the error does not name {naming}: {lines[0]!r}")
    expect(result.stdout.strip() == "", "an invalid invocation still printed a plan")


# -- the cases ---------------------------------------------------------------------


def secrets_cases(box: Sandbox) -> dict[str, Callable[[], None]]:
    def dry():
        return box.launch("ccvm-stub", "x")

    def not_in_output():
        result = dry()
        plan_of(result)
        for where, text in (("stdout (the plan)", result.stdout), ("stderr", result.stderr)):
            expect(SECRET not in text, f"the credential appears in {where}")
            expect(ENV_SECRET not in text, f"the caller's secret environment appears in {where}")

    def not_in_argv():
        argv = " ".join(plan_of(dry())["qemu_argv"])
        expect(SECRET not in argv, "the credential appears in the QEMU argv")
        expect(ENV_SECRET not in argv, "the caller's secret environment appears in the QEMU argv")

    def not_in_cmdline():
        plan = plan_of(dry())
        expect(SECRET not in plan.get("kernel_cmdline", ""), "the credential appears on the kernel command line")
        argv = plan["qemu_argv"]
        appends = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "-append"]
        expect(all(SECRET not in a for a in appends), "the credential appears in -append")

    def not_in_qemu_env():
        env = plan_of(dry()).get("qemu_env")
        expect(isinstance(env, dict), "the plan does not show the environment handed to QEMU")
        text = json.dumps(env)
        expect(SECRET not in text and ENV_SECRET not in text, "a secret is in the environment handed to QEMU")

    def not_in_files():
        dry()
        for path in box.cwd.rglob("*"):
            if path.is_file():
                expect(SECRET.encode() not in path.read_bytes(), f"the credential was written to {path}")

    return {
        "not-in-plan-or-output": not_in_output,
        "not-in-qemu-argv": not_in_argv,
        "not-in-kernel-cmdline": not_in_cmdline,
        "not-in-qemu-environment": not_in_qemu_env,
        "not-in-working-directory-or-reports": not_in_files,
    }


def _staged(plan: dict, guest_path: str) -> dict:
    found = [f for f in plan.get("staged", []) if f.get("guest_path") == guest_path]
    expect(
        len(found) == 1,
        f"{guest_path} is not staged exactly once (staged: {[f.get('guest_path') for f in plan.get('staged', [])]})",
    )
    return found[0]


def staging_cases(box: Sandbox) -> dict[str, Callable[[], None]]:
    def staged_file(name: str, source: Path):
        def check():
            entry = _staged(plan_of(box.launch("ccvm-stub")), f"~/.claude/{name}")
            expect(
                entry.get("size") == source.stat().st_size,
                f"size {entry.get('size')}, source has {source.stat().st_size}",
            )
            expect(entry.get("mode") == "0600", f"mode {entry.get('mode')}, expected 0600")
            expect("content" not in entry, "the plan carries file content")

        return check

    def private_scratch():
        plan = plan_of(box.launch("ccvm-stub", env={"CCVM_DEBUG": "1"}), keep_scratch=True)
        scratch = Path(plan["scratch"]["path"])
        try:
            expect(scratch.is_dir(), "debug mode did not keep the scratch directory")
            expect(stat.S_IMODE(scratch.stat().st_mode) == 0o700, f"scratch mode {scratch.stat().st_mode & 0o777:o}")
            for path in scratch.rglob("*"):
                if path.is_file():
                    expect(
                        stat.S_IMODE(path.stat().st_mode) == 0o600,
                        f"{path.name} mode {path.stat().st_mode & 0o777:o}, expected 600",
                    )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def scratch_removed():
        plan = plan_of(box.launch("ccvm-stub"))
        expect(not Path(plan["scratch"]["path"]).exists(), "the scratch directory outlived the run")

    def host_untouched():
        before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in box.config.iterdir()}
        plan_of(box.launch("ccvm-stub"))
        after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in box.config.iterdir()}
        expect(before == after, "the run changed the host's configuration files")

    def missing_config():
        empty = box.root / "empty-home"
        empty.mkdir(exist_ok=True)
        plan = plan_of(box.launch("ccvm-stub", env={"HOME": str(empty)}))
        homes = [f for f in plan.get("staged", []) if str(f.get("guest_path", "")).startswith("~/")]
        expect(homes == [], f"with no configuration, files were staged: {homes}")

    def malformed_settings():
        bad_home = box.root / "bad-home"
        (bad_home / ".claude").mkdir(parents=True, exist_ok=True)
        bad = bad_home / ".claude" / "settings.json"
        bad.write_text('{"model": \n')
        result = box.launch("ccvm-stub", env={"HOME": str(bad_home)})
        _one_line_error(result, "settings.json")
        expect(bad.read_text() == '{"model": \n', "the malformed settings file was changed")

    return {
        "settings-staged-0600": staged_file("settings.json", box.config / "settings.json"),
        "credentials-staged-0600": staged_file(".credentials.json", box.config / ".credentials.json"),
        "scratch-private-0700": private_scratch,
        "scratch-removed-after-run": scratch_removed,
        "host-config-untouched": host_untouched,
        "missing-config-is-fine": missing_config,
        "malformed-settings-rejected": malformed_settings,
    }


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


def argv_cases(box: Sandbox) -> dict[str, Callable[[], None]]:
    def verbatim(words: tuple[str, ...]):
        def check():
            plan = plan_of(box.launch("prog", *words))
            expect(
                plan.get("guest_argv") == ["prog", *words],
                f"guest argv {plan.get('guest_argv')!r}, expected {['prog', *words]!r}",
            )
            expect(plan.get("mode") == "run", f"program arguments changed the mode to {plan.get('mode')}")

        return check

    cases = {name: verbatim((word,)) for name, word in ARGV_CASES.items()}
    cases["all-at-once"] = verbatim(tuple(ARGV_CASES.values()))
    cases["after-double-dash"] = lambda: expect(
        plan_of(box.launch("--", "--prog", "-x")).get("guest_argv") == ["--prog", "-x"], "-- did not end the options"
    )
    return cases


def _field(plan: dict, key: str):
    value = plan
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def mode_cases(box: Sandbox) -> dict[str, Callable[[], None]]:
    def plan_field(args: tuple[str, ...], env: dict[str, str], key: str, want):
        def check():
            got = _field(plan_of(box.launch(*args, env=env)), key)
            expect(got == want, f"{key} is {got!r}, expected {want!r}")

        return check

    def invalid(args: tuple[str, ...], env: dict[str, str], naming: str):
        return lambda: _one_line_error(box.launch(*args, env=env), naming)

    run_ = ("prog",)
    return {
        "default-is-run": plan_field(run_, {}, "mode", "run"),
        "shell-flag": plan_field(("--shell",), {}, "mode", "shell"),
        "shell-env": plan_field((), {"CCVM_SHELL": "1"}, "mode", "shell"),
        "debug-flag": plan_field(("--ccvm-debug", "prog"), {}, "mode", "debug"),
        "debug-env": plan_field(run_, {"CCVM_DEBUG": "1"}, "mode", "debug"),
        "accel-default-from-matrix": plan_field(run_, {}, "accel", "tcg"),
        "accel-env-beats-default": plan_field(run_, {"CCVM_ACCEL": "kvm"}, "accel", "kvm"),
        "accel-flag-beats-env": plan_field(("--accel", "tcg", "prog"), {"CCVM_ACCEL": "kvm"}, "accel", "tcg"),
        "machine-env": plan_field(("--arch", "aarch64", "prog"), {"CCVM_MACHINE": "virt"}, "machine", "virt"),
        "writable-cwd-flag": plan_field(("--writable-cwd", "prog"), {}, "share.mode", "writable"),
        "writable-cwd-env": plan_field(run_, {"CCVM_WRITABLE_CWD": "1"}, "share.mode", "writable"),
        "default-share-is-overlay": plan_field(run_, {}, "share.mode", "overlay"),
        "memory-flag-beats-env": plan_field(("--memory", "1G", "prog"), {"CCVM_MEMORY": "768M"}, "memory_mib", 1024),
        "cores-env": plan_field(run_, {"CCVM_CORES": "3"}, "cores", 3),
        "invalid-accel-env": invalid(run_, {"CCVM_ACCEL": "foo"}, "CCVM_ACCEL"),
        "invalid-accel-flag": invalid(("--accel", "foo", "prog"), {}, "--accel"),
        "machine-not-fitting-arch": invalid(("--arch", "x86_64", "--machine", "virt", "prog"), {}, "--machine"),
        "memory-not-a-size": invalid(("--memory", "lots", "prog"), {}, "--memory"),
        "invalid-shell-env": invalid(run_, {"CCVM_SHELL": "maybe"}, "CCVM_SHELL"),
    }


def script_cases(box: Sandbox, script: Path) -> dict[str, Callable[[], None]]:
    def check():
        env = box.env()
        env.pop("CCVM_DRYRUN")
        result = run(["sh", str(script), *box.wrapper], timeout_s=CASE_TIMEOUT_S * 4, cwd=str(box.cwd), env=env)
        expect(result.returncode == 0, f"tests/host.sh failed: {last_line(result.stdout + result.stderr)}")

    return {"host.sh": check}


GROUPS: dict[str, Callable[[Sandbox], dict[str, Callable[[], None]]]] = {
    "secrets": secrets_cases,
    "staging": staging_cases,
    "argv": argv_cases,
    "modes": mode_cases,
}


def _run_case(name: str, check: Callable[[], None]) -> Case:
    started = time.monotonic()
    try:
        check()
    except CaseFailed as exc:
        return Case(name=name, outcome=Outcome.FAIL, seconds=time.monotonic() - started, message=str(exc))
    return Case(name=name, outcome=Outcome.PASS, seconds=time.monotonic() - started)


def default_wrapper() -> tuple[str, ...]:
    return (sys.executable, "-m", "ccvm", "vm")


def run_host_suite(*, wrapper: tuple[str, ...], matrix: Path, script: Path | None, jobs: int = 4) -> list[Suite]:
    with tempfile.TemporaryDirectory(prefix="ccvm-host-suite-") as parent:
        groups = {name: build(make_sandbox(Path(parent), wrapper, matrix)) for name, build in GROUPS.items()}
        if script is not None:
            groups["script"] = script_cases(make_sandbox(Path(parent), wrapper, matrix), script)
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {
                group: {name: pool.submit(_run_case, name, check) for name, check in cases.items()}
                for group, cases in groups.items()
            }
            return [
                Suite(name=f"host.{group}", cases=[f.result() for f in cases.values()])
                for group, cases in futures.items()
            ]
