"""``ccvm rehearse JOB``: run one job of a generated workflow here, as a
hosted runner would run it.

A fresh clone of HEAD in a rehearsal directory is the workspace.  Each step
runs in order: a ``run:`` step as GitHub's default shell runs it
(``bash --noprofile --norc -eo pipefail FILE``) with the workflow's, the
job's and the step's env, the matrix values of the chosen cell and the
files $GITHUB_ENV, $GITHUB_OUTPUT, $GITHUB_PATH and $GITHUB_STEP_SUMMARY
honoured between steps; a ``uses:`` step is emulated when known
(ccvm.ci.emulate) and reported skipped otherwise.  ``if:`` conditions and
``${{ }}`` are evaluated by ccvm.ci.expressions; one it cannot evaluate
fails the step with the reason, never a guess.  Every step runs in its own
session (ccvm.processes) under what is left of the job's timeout-minutes.
docs/src/ci.md lists what differs from a hosted runner.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

import yaml

from ccvm import processes
from ccvm.ci import emulate, runnerfiles
from ccvm.ci.expressions import Context, Status, Unevaluable, condition, substitute, to_string
from ccvm.errors import ConfigError, UsageError
from ccvm.git import git_output

DEFAULT_WORKFLOW = Path(".github/workflows/ci.yml")
DEFAULT_JOB_MINUTES = 360  # GitHub's own default for a job without timeout-minutes
SHELL = ("bash", "--noprofile", "--norc", "-eo", "pipefail")  # GitHub's default for `run:` on Linux
SHELLS = {
    "bash": SHELL,
    "sh": ("sh", "-e"),
    "python": ("python3",),
}


class StepOutcome(enum.StrEnum):
    """A step's outcome in GitHub's own words, as ``steps.<id>.outcome`` and
    ``steps.<id>.conclusion`` hold them in expressions (not a check's pass/fail/skip,
    ccvm.report.results.Outcome)."""

    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"


@dataclass(frozen=True, kw_only=True)
class PlannedStep:
    number: int
    name: str
    kind: str  # "run" or "uses"
    spec: dict


@dataclass(frozen=True, kw_only=True)
class StepResult:
    number: int
    name: str
    outcome: StepOutcome
    seconds: float = 0.0
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Options:
    root: Path
    job: str
    workflow: Path = DEFAULT_WORKFLOW
    cell: str | None = None
    directory: Path | None = None  # default: a new temporary directory
    keep: bool = False


@dataclass(kw_only=True)
class Result:
    job: str
    cell: dict
    steps: list[StepResult] = field(default_factory=list)
    summary: str = ""
    directory: Path | None = None

    @property
    def ok(self) -> bool:
        return all(step.outcome is not StepOutcome.FAILURE for step in self.steps)


# -- reading the workflow and planning ------------------------------------------------


def load_workflow(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--workflow {path}: no such file (run `ccvm generate` first)") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ConfigError(path, line + 1 if line is not None else None, f"cannot read: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict):
        raise ConfigError(path, None, "a workflow needs a jobs: mapping")
    return doc


def job_of(doc: dict, job_id: str, path: Path) -> dict:
    jobs = doc["jobs"]
    if job_id not in jobs:
        raise UsageError(f"{path}: no job {job_id!r}; jobs: {', '.join(jobs)}")
    job = jobs[job_id]
    if not isinstance(job, dict) or not isinstance(job.get("steps"), list):
        raise ConfigError(path, None, f"job {job_id!r} has no steps: list")
    return job


def matrix_entries(job: dict) -> list[dict]:
    """The job's matrix combinations: the product of its axes less exclude, then include."""
    matrix = (job.get("strategy") or {}).get("matrix")
    if not matrix:
        return [{}]
    if not isinstance(matrix, dict):
        raise UsageError("the job's matrix is an expression; a rehearsal needs it written out")
    axes = {key: value for key, value in matrix.items() if key not in ("include", "exclude")}
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())] if axes else []
    for rule in matrix.get("exclude") or []:
        combos = [c for c in combos if not all(c.get(k) == v for k, v in rule.items())]
    for extra in matrix.get("include") or []:
        matched = [c for c in combos if all(c.get(k) == v for k, v in extra.items() if k in axes)]
        if axes and matched and any(k in axes for k in extra):
            for combo in matched:
                combo.update(extra)
        else:
            combos.append(dict(extra))
    return combos


def cell_label(entry: dict) -> str:
    return str(entry.get("cell") or "-".join(str(v) for v in entry.values()))


def pick_cell(entries: list[dict], cell: str | None, job_id: str) -> dict:
    """The matrix entry --cell names (its `cell` value, or its values joined by -); the only one without it."""
    labels = ", ".join(cell_label(entry) for entry in entries)
    if cell is None:
        if len(entries) == 1:
            return entries[0]
        raise UsageError(f"job {job_id} has {len(entries)} matrix cells; pick one with --cell: {labels}")
    for entry in entries:
        if cell_label(entry) == cell:
            return entry
    raise UsageError(f"--cell {cell}: not a cell of job {job_id}; cells: {labels}")


def plan_steps(job: dict) -> list[PlannedStep]:
    planned = []
    for number, spec in enumerate(job["steps"], start=1):
        if not isinstance(spec, dict) or ("run" in spec) == ("uses" in spec):
            raise UsageError(f"step {number}: a step needs exactly one of run: and uses:")
        kind = "run" if "run" in spec else "uses"
        default = f"Run {str(spec['run']).splitlines()[0]}" if kind == "run" else f"Run {spec['uses']}"
        planned.append(PlannedStep(number=number, name=str(spec.get("name") or default), kind=kind, spec=spec))
    return planned


# -- running one job -------------------------------------------------------------------


def _hash_files(workspace: Path):
    def hash_files(patterns: list[str]) -> str:
        files = sorted({p for pattern in patterns for p in glob(str(workspace / pattern), recursive=True)})
        total = hashlib.sha256()
        for name in files:
            if Path(name).is_file():
                total.update(hashlib.sha256(Path(name).read_bytes()).digest())
        return total.hexdigest() if files else ""

    return hash_files


class JobRun:
    """One job's state between its steps: env, files, step outputs, status and the deadline."""

    def __init__(self, *, doc: dict, job_id: str, job: dict, cell: dict, workspace: Path, rehearsal: Path) -> None:
        self.job_id, self.job, self.cell = job_id, job, cell
        self.workspace, self.rehearsal = workspace, rehearsal
        self.temp = rehearsal / "runner-temp"
        self.temp.mkdir(parents=True, exist_ok=True)
        self.files = rehearsal / "runner-files"
        self.files.mkdir(parents=True, exist_ok=True)
        self.env_file, self.path_file = self.files / "env", self.files / "path"
        self.steps: dict[str, dict] = {}
        self.status = Status()
        self.posts: list = []
        self.summary: list[str] = []
        minutes = job.get("timeout-minutes", DEFAULT_JOB_MINUTES)
        self.deadline = time.monotonic() + float(minutes) * 60
        self.minutes = minutes
        self.base = self._base_env()
        self.workflow_env = self._expand_env(doc.get("env") or {}, "the workflow's env")
        self.job_env = self._expand_env(job.get("env") or {}, f"job {job_id}'s env")

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CI="true",
            GITHUB_ACTIONS="true",
            GITHUB_JOB=self.job_id,
            GITHUB_WORKSPACE=str(self.workspace),
            GITHUB_EVENT_NAME="workflow_dispatch",
            GITHUB_ENV=str(self.env_file),
            GITHUB_PATH=str(self.path_file),
            RUNNER_TEMP=str(self.temp),
            RUNNER_OS="Linux",
            RUNNER_ARCH=_runner_arch(),
            CCVM_REHEARSAL="1",
        )
        return env

    def contexts(self, env: dict[str, str]) -> dict[str, object]:
        return {
            "matrix": self.cell,
            "env": env,
            "steps": self.steps,
            "github": {
                "event_name": "workflow_dispatch",
                "workspace": str(self.workspace),
                "job": self.job_id,
                "workflow": "ci",
                "sha": self.base.get("CCVM_REHEARSAL_SHA", ""),
                "ref": self.base.get("CCVM_REHEARSAL_REF", ""),
                "event": {},
            },
            "runner": {"os": "Linux", "arch": _runner_arch(), "temp": str(self.temp), "name": platform.node()},
        }

    def context(self, env: dict[str, str]) -> Context:
        return Context(contexts=self.contexts(env), status=self.status, hash_files=_hash_files(self.workspace))

    def _expand_env(self, raw: dict, where: str) -> dict[str, str]:
        base = {**self.base, **getattr(self, "workflow_env", {}), **getattr(self, "job_env", {})}
        try:
            return {str(k): substitute(to_string(v), self.context(base)) for k, v in raw.items()}
        except Unevaluable as exc:
            raise UsageError(f"{where}: cannot evaluate {exc}") from None

    def step_env(self, spec: dict) -> dict[str, str]:
        """The env a step runs with: runner, workflow, job, $GITHUB_ENV, the step's own, $GITHUB_PATH first."""
        env = {**self.base, **self.workflow_env, **self.job_env, **runnerfiles.read_assignments(self.env_file)}
        context = self.context(env)
        env.update({str(k): substitute(to_string(v), context) for k, v in (spec.get("env") or {}).items()})
        extra = runnerfiles.read_paths(self.path_file)
        if extra:
            env["PATH"] = os.pathsep.join([*extra, env.get("PATH", "")])
        return env

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()


def _runner_arch() -> str:
    return {"x86_64": "X64", "aarch64": "ARM64", "arm64": "ARM64"}.get(platform.machine(), platform.machine())


def _step_timeout(run: JobRun, spec: dict) -> float:
    left = run.seconds_left()
    if "timeout-minutes" in spec:
        left = min(left, float(spec["timeout-minutes"]) * 60)
    return max(left, 0.0)


def _run_script(run: JobRun, step: PlannedStep, env: dict[str, str]) -> tuple[bool, str]:
    script = substitute(str(step.spec["run"]), run.context(env))
    shell = str(step.spec.get("shell") or (run.job.get("defaults") or {}).get("run", {}).get("shell") or "bash")
    argv = SHELLS.get(shell.split()[0]) if "{0}" not in shell else tuple(shell.replace("{0}", "").split())
    if argv is None:
        return False, f"shell {shell!r} is not one a rehearsal runs (bash, sh, python)"
    path = run.temp / f"step-{step.number}.sh"
    path.write_text(script + "\n", encoding="utf-8")
    cwd = run.workspace / str(step.spec.get("working-directory") or ".")
    timeout = _step_timeout(run, step.spec)
    proc = processes.spawn([*argv, str(path)], cwd=str(cwd), env=env, stdin=subprocess.DEVNULL)
    try:
        status = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        processes.stop(proc)
        return False, f"timed out after {timeout:.0f}s (timeout-minutes {run.minutes}) and was killed"
    finally:
        if proc.poll() is None:
            processes.stop(proc, term_grace_s=0)
        processes.forget(proc)
    return status == 0, "" if status == 0 else f"exited with status {status}"


def _run_uses(run: JobRun, step: PlannedStep, env: dict[str, str]) -> tuple[bool | None, str]:
    """(ok, note); ok None: not a known action, so skipped."""
    uses = str(step.spec["uses"])
    emulator = emulate.KNOWN.get(emulate.action_name(uses))
    if emulator is None:
        return None, f"{uses}: not an action a rehearsal knows; skipped"
    context = run.context(env)
    inputs = {str(k): substitute(to_string(v), context) for k, v in (step.spec.get("with") or {}).items()}
    done = emulator(inputs, emulate.Place(workspace=run.workspace, rehearsal=run.rehearsal, env=env))
    if done.env:
        with run.env_file.open("a", encoding="utf-8") as handle:
            for key, value in done.env.items():
                handle.write(f"{key}<<CCVM_EOF\n{value}\nCCVM_EOF\n")
    if done.post is not None:
        run.posts.append(done.post)
    return done.ok, done.note


def _collect(run: JobRun, step: PlannedStep, outputs: Path, summary: Path, outcome: StepOutcome) -> None:
    text = runnerfiles.read_text(summary)
    if text.strip():
        run.summary.append(text)
    step_id = step.spec.get("id")
    if step_id:
        conclusion = StepOutcome.SUCCESS if step.spec.get("continue-on-error") is True else outcome
        run.steps[str(step_id)] = {
            "outputs": runnerfiles.read_assignments(outputs),
            "outcome": str(outcome),
            "conclusion": str(conclusion),
        }


def run_step(run: JobRun, step: PlannedStep) -> StepResult:
    started = time.monotonic()
    outputs, summary = run.files / f"output-{step.number}", run.files / f"summary-{step.number}"
    try:
        env = run.step_env(step.spec)
        env.update(GITHUB_OUTPUT=str(outputs), GITHUB_STEP_SUMMARY=str(summary))
        if not condition(step.spec.get("if"), run.context(env)):
            return StepResult(number=step.number, name=step.name, outcome=StepOutcome.SKIPPED, note="if: false")
        if run.seconds_left() <= 0:
            ok, note = False, f"the job's timeout-minutes ({run.minutes}) ran out before this step"
        elif step.kind == "run":
            ok, note = _run_script(run, step, env)
        else:
            ok, note = _run_uses(run, step, env)
    except Unevaluable as exc:
        ok, note = False, f"cannot evaluate: {exc} (not guessed)"
    outcome = StepOutcome.SKIPPED if ok is None else StepOutcome.SUCCESS if ok else StepOutcome.FAILURE
    _collect(run, step, outputs, summary, outcome)
    if outcome is StepOutcome.FAILURE and step.spec.get("continue-on-error") is not True:
        run.status = Status(failed=True, cancelled=run.status.cancelled)
    return StepResult(
        number=step.number, name=step.name, outcome=outcome, seconds=time.monotonic() - started, note=note
    )


# -- the whole rehearsal ---------------------------------------------------------------


def fresh_clone(root: Path, target: Path) -> str:
    """A clone of root's HEAD (the commit, even in a worktree) at target; returns the commit."""
    sha = git_output(root, "rev-parse", "HEAD").strip()
    git_output(root, "clone", "--quiet", "--no-checkout", str(root), str(target))
    git_output(target, "checkout", "--quiet", "--detach", sha)
    return sha


def _runs_on_note(job: dict, run: JobRun) -> str:
    try:
        label = substitute(to_string(job.get("runs-on", "")), run.context(run.base))
    except Unevaluable as exc:
        return f"runs-on: cannot evaluate ({exc})"
    arch = platform.machine()
    wrong = ("-arm" in label and arch != "aarch64") or ("-arm" not in label and arch == "aarch64")
    return f"runs-on {label}; here {arch}" + (" (a different arch from that runner)" if wrong else "")


def _prepare(options: Options, say) -> tuple[Path, Path, str]:
    directory = options.directory or Path(tempfile.mkdtemp(prefix="ccvm-rehearse-"))
    directory.mkdir(parents=True, exist_ok=True)
    workspace = directory / "workspace"
    if workspace.exists():
        shutil.rmtree(workspace)
    sha = fresh_clone(options.root, workspace)
    if git_output(options.root, "status", "--porcelain", "--untracked-files=no").strip():
        say("note: the working tree has uncommitted changes; the rehearsal runs HEAD without them")
    return directory, workspace, sha


def _posts(run: JobRun, result: Result, *, keeps: bool, say) -> None:
    """After the steps, as the actions' post steps: caches are saved only by a job that passed."""
    if not run.posts:
        return
    if not result.ok:
        say("post: caches not saved (the job failed)")
    elif not keeps:
        say("post: caches not saved (the rehearsal directory is temporary; --dir DIR keeps them between rehearsals)")
    else:
        for post in run.posts:
            say(f"post: {post()}")


def rehearse(options: Options, say=print) -> Result:
    directory, workspace, sha = _prepare(options, say)
    try:
        doc = load_workflow(workspace / options.workflow)
        job = job_of(doc, options.job, options.workflow)
        cell = pick_cell(matrix_entries(job), options.cell, options.job)
        run = JobRun(doc=doc, job_id=options.job, job=job, cell=cell, workspace=workspace, rehearsal=directory)
        run.base.update(CCVM_REHEARSAL_SHA=sha, GITHUB_SHA=sha)
        result = Result(job=options.job, cell=cell, directory=directory)
        steps = plan_steps(job)
        say(f"rehearsing job {options.job}{' cell ' + cell_label(cell) if cell else ''} at {sha[:12]} in {workspace}")
        say(f"{_runs_on_note(job, run)}; timeout-minutes {run.minutes}")
        for step in steps:
            say(f"==> [{step.number}/{len(steps)}] {step.name}")
            outcome = run_step(run, step)
            result.steps.append(outcome)
            say(f"<== {outcome.outcome} ({outcome.seconds:.1f}s){': ' + outcome.note if outcome.note else ''}")
        _posts(run, result, keeps=options.keep or options.directory is not None, say=say)
        result.summary = "\n".join(run.summary)
        return result
    finally:
        if options.keep:
            pass
        elif options.directory is None:  # a temporary rehearsal directory leaves nothing behind
            shutil.rmtree(directory, ignore_errors=True)
        else:
            shutil.rmtree(workspace, ignore_errors=True)
            shutil.rmtree(directory / "actions-cache", ignore_errors=True)
