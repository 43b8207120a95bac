"""A private place to run a launcher's dry run, and what the dry run reported.

A Sandbox is a temporary HOME (the declared credential files hold random
markers, the configuration files harmless text), a working directory and
a TMPDIR, all under one private directory.  ``Sandbox.dry`` runs the
launcher with its dry-run hook and reads the result in either style:

- ``plan``: ccvm's JSON launch plan on stdout;
- ``scratch-dir``: the path of a scratch directory on stdout, holding what
  the launcher staged (the argv in the declared file among it).

The scratch directory is read into memory (names, modes, bytes) and
removed at once when it lies inside the sandbox, so no staged credential
outlives the case.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.files import cache_root
from ccvm.launcher.dryrun import DryRunGuard, IgnoredHook, NotRunAgain, left_running
from ccvm.launcher.home import home_path, plant_home
from ccvm.matrix.launcher import ArgvFormat, DryRunStyle, Launcher
from ccvm.processes import Completed
from ccvm.text import last_line

MARKER_PREFIX = "ccvm-planted-"
MAX_SCRATCH_FILES = 2000
MAX_SCRATCH_FILE_BYTES = 16 * 1024 * 1024


class CaseFailed(Exception):
    pass


class CaseSkipped(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CaseFailed(message)


def one_line_error(result, naming: str) -> None:
    expect(result.returncode == 2, f"expected exit status 2, got {result.returncode}")
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    expect(len(lines) == 1, f"expected one error line, got {len(lines)}: {result.stderr.strip()[:300]!r}")
    expect("Traceback" not in result.stderr, "a traceback reached the user")
    expect(naming in lines[0], f"the error does not name {naming}: {lines[0]!r}")
    expect(result.stdout.strip() == "", "an invalid invocation still printed a plan")


@dataclass(frozen=True, kw_only=True)
class Markers:
    """One random marker per place a secret lives (a file under ~, or a variable)."""

    by_origin: dict[str, str]

    def origins_in(self, data: bytes | str) -> list[str]:
        """Where each secret found in ``data`` came from (a file under HOME, a variable)."""
        blob = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        return [origin for origin, marker in self.by_origin.items() if marker.encode() in blob]

    def redact(self, text: str) -> str:
        for origin, marker in self.by_origin.items():
            text = text.replace(marker, f"<secret from {origin}>")
        return text


def new_markers(launcher: Launcher) -> Markers:
    origins = [*launcher.secrets.files, *(f"${name}" for name in launcher.secrets.variables)]
    return Markers(by_origin={origin: MARKER_PREFIX + secrets.token_hex(12) for origin in origins})


@dataclass(frozen=True, kw_only=True)
class ScratchFile:
    relative: str
    mode: int
    data: bytes
    private: bool  # no other user can read it: its own mode, or a directory on its way, keeps them out


def others_can_read(mode: int, directories: list[int]) -> bool:
    """Whether a user other than the owner can read a file of this mode through these directories
    (the scratch directory and each one below it): read on the file, search on every directory,
    for the group or for others."""
    by_group = bool(mode & stat.S_IRGRP) and all(d & stat.S_IXGRP for d in directories)
    by_others = bool(mode & stat.S_IROTH) and all(d & stat.S_IXOTH for d in directories)
    return by_group or by_others


@dataclass(frozen=True, kw_only=True)
class Report:
    """What one dry run reported, in either style."""

    result: Completed
    plan: dict | None = None
    scratch: Path | None = None  # as printed (plan: scratch.path); already removed when inside the sandbox
    scratch_mode: int | None = None  # None: the directory did not exist after the run
    files: tuple[ScratchFile, ...] = ()
    argv: tuple[str, ...] | None = None  # None: this style or declaration cannot say
    argv_missing: str = ""  # why argv is None

    def fingerprint(self) -> str:
        """A digest of what the dry run reported, the scratch path itself left out."""
        digest = hashlib.sha256()
        name = str(self.scratch or "").encode()
        digest.update(self.result.stdout.encode("utf-8", "surrogateescape").replace(name, b"<scratch>"))
        for entry in self.files:
            digest.update(f"\0{entry.relative}\0{entry.mode:o}\0".encode())
            digest.update(entry.data.replace(name, b"<scratch>"))
        return digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class Sandbox:
    root: Path
    launcher: Launcher
    wrapper: tuple[str, ...]  # the launcher's argv, resolved
    style: DryRunStyle
    markers: Markers
    matrix: Path | None = None
    cell_env: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 120.0
    guard: DryRunGuard = field(default_factory=DryRunGuard)  # one per suite: a dry run that booted is not run again

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def cwd(self) -> Path:
        return self.root / "work"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def home_path(self, tilde_path: str) -> Path:
        return home_path(self.home, tilde_path)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CCVM_")}
        env.update(HOME=str(self.home), TMPDIR=str(self.tmp), XDG_CACHE_HOME=str(cache_root().parent))
        if self.matrix is not None:
            env["CCVM_MATRIX"] = str(self.matrix)
        env.update(self.cell_env)
        env[self.launcher.dry_run.variable] = self.launcher.dry_run.value
        for name in self.launcher.secrets.variables:
            env[name] = self.markers.by_origin[f"${name}"]
        env.update(extra or {})
        return env

    def launch(self, *args: str, env: dict[str, str] | None = None) -> Completed:
        """One dry run, its whole process tree watched (ccvm.launcher.dryrun)."""
        try:
            done = self.guard.run(
                [*self.wrapper, *args],
                launcher=self.launcher,
                program=self.wrapper,
                timeout_s=self.timeout_s,
                cwd=str(self.cwd),
                env=self.env(env),
            )
        except IgnoredHook as exc:
            raise CaseFailed(str(exc)) from None
        except NotRunAgain as exc:
            raise CaseSkipped(str(exc)) from None
        expect(not done.tree.problem, done.tree.problem)
        expect(not done.tree.leftovers, left_running(done))
        return done

    def dry(self, *args: str, env: dict[str, str] | None = None) -> Report:
        return read_report(self, self.launch(*args, env=env))


def make_sandbox(parent: Path, **fields) -> Sandbox:
    box = Sandbox(root=Path(tempfile.mkdtemp(prefix="ccvm-host-", dir=parent)), **fields)
    plant_home(box.home, box.launcher, box.markers.by_origin.__getitem__)
    box.cwd.mkdir()
    box.tmp.mkdir()
    (box.cwd / "project-file.txt").write_text("host file\n")
    return box


def _check_finished(box: Sandbox, result: Completed) -> None:
    hook = f"{box.launcher.dry_run.variable}={box.launcher.dry_run.value}"
    if result.returncode is None:
        raise CaseFailed(f"the dry run ({hook}) did not finish within {box.timeout_s:g}s and was killed")
    expect(result.returncode == 0, f"the dry run exited {result.returncode}: {last_line(result.stderr)}")
    expect(result.stdout.strip() != "", f"the dry run ({hook}) printed nothing on stdout; it must print {box.style}")


def read_report(box: Sandbox, result: Completed) -> Report:
    _check_finished(box, result)
    if box.style is DryRunStyle.PLAN:
        return _plan_report(box, result)
    printed = last_line(result.stdout).strip()
    scratch = Path(printed) if os.path.isabs(printed) else box.cwd / printed
    expect(scratch.is_dir(), f"the dry run printed {printed!r}, which is not an existing directory")
    report = _snapshot(box, result, scratch)
    argv, why = _argv_from_file(box.launcher, report)
    return Report(**{**report.__dict__, "argv": argv, "argv_missing": why})


def _plan_report(box: Sandbox, result: Completed) -> Report:
    try:
        plan = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise CaseFailed(f"the dry run did not print a JSON plan ({exc.msg} at line {exc.lineno})") from None
    expect(isinstance(plan, dict) and "qemu_argv" in plan, "the plan has no qemu_argv")
    scratch_info = plan.get("scratch") if isinstance(plan.get("scratch"), dict) else {}
    raw = scratch_info.get("path")
    scratch = Path(raw) if isinstance(raw, str) and raw else None
    report = _snapshot(box, result, scratch) if scratch else Report(result=result)
    argv = plan.get("guest_argv")
    ok = isinstance(argv, list) and all(isinstance(word, str) for word in argv)
    return Report(
        **{**report.__dict__, "plan": plan, "argv": tuple(argv) if ok else None, "argv_missing": "no guest_argv list"}
    )


def _snapshot(box: Sandbox, result: Completed, scratch: Path) -> Report:
    """Read the scratch directory (without following links), then remove it if it is ours."""
    try:
        mode = stat.S_IMODE(scratch.lstat().st_mode) if scratch.is_dir() else None
    except OSError:
        mode = None
    files = []
    if mode is not None:
        modes = {scratch: mode}  # each directory's mode, the scratch directory's included
        for path in sorted(scratch.rglob("*"))[:MAX_SCRATCH_FILES]:
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                modes[path] = stat.S_IMODE(info.st_mode)
            if stat.S_ISREG(info.st_mode):
                with path.open("rb") as handle:
                    data = handle.read(MAX_SCRATCH_FILE_BYTES)
                way = [modes.get(parent, 0o777) for parent in path.parents if parent.is_relative_to(scratch)]
                files.append(
                    ScratchFile(
                        relative=path.relative_to(scratch).as_posix(),
                        mode=stat.S_IMODE(info.st_mode),
                        data=data,
                        private=not others_can_read(stat.S_IMODE(info.st_mode), way),
                    )
                )
        if scratch.resolve().is_relative_to(box.root.resolve()) and scratch.resolve() != box.root.resolve():
            shutil.rmtree(scratch, ignore_errors=True)
    return Report(result=result, scratch=scratch, scratch_mode=mode, files=tuple(files))


def _argv_from_file(launcher: Launcher, report: Report) -> tuple[tuple[str, ...] | None, str]:
    name = launcher.dry_run.argv_file
    if name is None:
        return None, "no dry_run.argv_file is declared, so the dry run's argv cannot be read"
    found = next((f for f in report.files if f.relative == name), None)
    if found is None:
        return None, f"the declared argv file {name} is not in the scratch directory"
    separator = b"\0" if launcher.dry_run.argv_format is ArgvFormat.NUL else b"\n"
    data = found.data.removesuffix(separator)
    if not found.data:
        return (), ""
    return tuple(word.decode("utf-8", "surrogateescape") for word in data.split(separator)), ""
