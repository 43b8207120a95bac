"""A declared launcher's build step, once per Nix system per run.

``build:`` in matrix/launcher.yaml names, per Nix system, a flake
installable (``nix build --no-link --json``) or a command run from the
project root.  After a flake build the launcher's argv names a file in the
build's output (a leading ``result/``, the link a plain ``nix build`` makes,
stands for that output too).  What comes out is the launcher's resolved
argv for that system, or why there is none.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ccvm import processes
from ccvm.errors import CcvmError
from ccvm.launcher.resolve import resolve_argv
from ccvm.matrix.launcher import BuildStep, Launcher
from ccvm.memo import OncePerKey
from ccvm.nixtool import error_summary, find_nix, missing_reason, needs_newer_nix
from ccvm.text import clean_text, last_line

TAIL_LINES = 40


@dataclass(frozen=True, kw_only=True)
class Built:
    """The launcher's argv for one Nix system, or why there is none."""

    argv: tuple[str, ...] = ()
    problem: str = ""  # one line
    details: str = ""  # the build's last lines
    out_path: str = ""  # what a flake build printed


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(clean_text(text).splitlines()[-lines:])


def _build_argv(step: BuildStep) -> tuple[list[str] | None, str, str]:
    """The build's argv and the Nix version it runs with ('' for a command), or None and why not."""
    if step.command:
        return list(step.command), "", ""
    nix = find_nix()
    if nix is None:
        return None, "", missing_reason()
    # --json rather than --print-out-paths (Nix 2.9): the same output paths, from Nix 2.4 on
    return nix.argv("build", "--no-link", "--json", str(step.flake)), nix.version, ""


def run_build(step: BuildStep, root: Path, timeout_s: float) -> tuple[processes.Completed, str] | str:
    """Run the build step from the project root, with the Nix version it ran with ('' for a
    command); a str says why it could not start."""
    argv, nix_version, why = _build_argv(step)
    if argv is None:
        return why
    try:
        return processes.run(argv, timeout_s=timeout_s, cwd=str(root)), nix_version
    except OSError as exc:
        return f"{argv[0]}: could not start ({exc.strerror or exc})"


def _out_path(stdout: str) -> str:
    """The first output path of `nix build --json`'s first result ('' when there is none)."""
    try:
        results = json.loads(stdout)
        return str(next(iter(results[0]["outputs"].values())))
    except (ValueError, LookupError, TypeError, AttributeError, StopIteration):
        return ""


def _built(step: BuildStep, result: processes.Completed, nix_version: str) -> Built:
    what = f"build {step.flake or ' '.join(step.command)} ({step.system})"
    if result.returncode != 0:
        how = "timed out" if result.returncode is None else f"exited {result.returncode}"
        too_old = needs_newer_nix(nix_version, result.stderr) if step.flake else None
        why = too_old or (error_summary(result.stderr) if step.flake else last_line(result.stderr))
        return Built(problem=f"{what} {how}: {why}", details=_tail(result.stdout + "\n" + result.stderr))
    if step.command:
        return Built()  # the command leaves the launcher under the project root
    out = _out_path(result.stdout)
    if not out:
        return Built(problem=f"{what} printed no output path", details=_tail(result.stdout + "\n" + result.stderr))
    return Built(out_path=out)


def _in_output(launcher: Launcher) -> Launcher:
    """After a flake build argv[0] names a file in the build's output; a leading
    ``result/`` (the link a plain ``nix build`` makes) stands for that output too."""
    first, *rest = launcher.argv
    parts = PurePosixPath(first).parts
    if len(parts) > 1 and parts[0] == "result":
        first = str(PurePosixPath(*parts[1:]))
    return dataclasses.replace(launcher, argv=(first, *rest))


class LauncherBuilds:
    """The launcher's argv per Nix system: built (when it has a build step) and resolved once per run."""

    def __init__(self, launcher: Launcher, root: Path, *, timeout_s: float, log_dir: Path) -> None:
        self.launcher, self.root, self.timeout_s, self.log_dir = launcher, root, timeout_s, log_dir
        self._per_system: OncePerKey[str, Built] = OncePerKey(self._build_and_resolve)

    def for_system(self, system: str) -> Built:
        return self._per_system.get(system)

    def _build_and_resolve(self, system: str) -> Built:
        step = self.launcher.build_for(system)
        built = Built()
        if step is not None:
            ran = run_build(step, self.root, self.timeout_s)
            if isinstance(ran, str):
                return Built(problem=f"build ({system}): {ran}")
            result, nix_version = ran
            self._log(system, result)
            built = _built(step, result, nix_version)
            if built.problem:
                return built
        launcher, base = self.launcher, self.root
        if built.out_path:
            launcher, base = _in_output(self.launcher), Path(built.out_path)
        try:
            return Built(argv=resolve_argv(launcher, base), out_path=built.out_path)
        except CcvmError as exc:
            where = f" in the build's output {built.out_path}" if built.out_path else ""
            return Built(problem=f"the launcher{where}: {exc}")

    def _log(self, system: str, result: processes.Completed) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        text = f"$ {' '.join(result.argv)}\n{result.stdout}\n{result.stderr}"
        (self.log_dir / f"build-{system}.log").write_text(text, encoding="utf-8", errors="replace")
