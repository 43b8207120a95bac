"""What the generated CI runs on (matrix/actions.yaml): pinned GitHub
Actions, the runner for each arch (``none`` for aarch64 leaves its cells
out of CI), the Python version, the branch whose pushes run the workflow
(``branch``), and, for a project that adopted ccvm, where its workflow
installs ccvm from (``ccvm_pip``) and what that workflow is called
(``workflow``: its file name and its ``name:``).

Each action is pinned to a full commit SHA with its release tag in a
comment on the same line, written as a workflow step would be::

    actions:
      - uses: actions/checkout@<40 hex digits> # v4.2.2

so that an automated version bump (Renovate's github-actions manager
pointed at this file) edits this source, not the generated workflows.
The tag comment is read from the file's text, since YAML drops comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ccvm.errors import ConfigError
from ccvm.matrix.axes import Arch, parse_axis_value
from ccvm.matrix.yamlsrc import Mapping, expect_mapping, expect_sequence

_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_./-]+)?")
_SHA = re.compile(r"[0-9a-f]{40}")
_TAG_COMMENT = re.compile(r"\s#\s*(\S+)\s*$")
_RUNNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_PYTHON = re.compile(r"3\.\d+(?:\.\d+)?")

DEFAULT_RUNNERS: dict[Arch, str | None] = {Arch.X86_64: "ubuntu-24.04", Arch.AARCH64: "ubuntu-24.04-arm"}
# `runners: {aarch64: none}`: no aarch64 runner (GitHub's hosted arm64 runners are for public repositories only),
# so the generated workflows leave the aarch64 cells, builds and flake checks out.  x86_64 runs every other job.
NO_RUNNER = "none"
OPTIONAL_RUNNERS = (Arch.AARCH64,)
DEFAULT_BRANCH = "main"  # pushes to it run the workflow; `ccvm init` writes the branch it found
_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
DEFAULT_PYTHON = "3.12"
# GitHub's x86_64 Linux hosted runners expose /dev/kvm (after a udev rule opens it to the runner user);
# its arm64 ones may not, so they are not listed by default.
DEFAULT_KVM_RUNNERS = ("ubuntu-24.04",)
DEFAULT_WORKFLOW = "ccvm"  # the adopted workflow: .github/workflows/ccvm.yml
WORKFLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# What pip installs ccvm from in an adopted project's workflow: pinned, never a bare name (there is no ccvm on
# PyPI, and a name nobody has claimed there is anyone's to take): ccvm==VERSION from the project's own index, or
# ccvm @ URL (a VCS URL with @REF, or an https archive).
_PINNED = re.compile(r"ccvm\s*==\s*[0-9A-Za-z][0-9A-Za-z.+!_-]*")
_DIRECT = re.compile(r"ccvm\s*@\s*(\S+)")
_VCS_AT_REF = re.compile(r"(git|hg|svn|bzr)\+(https|ssh|git|http)://[^@\s]+(@[^@\s]+)?@[^@/\s]+(#\S*)?")
CCVM_PIP_EXAMPLES = "ccvm @ git+https://HOST/OWNER/ccvm.git@COMMIT, or ccvm==VERSION from your own package index"


@dataclass(frozen=True, kw_only=True)
class CcvmPip:
    """matrix/actions.yaml ``ccvm_pip``: a pinned requirement, or a placeholder (``{unset: WHY}``) under which
    the generated workflow fails, naming this line, until someone sets it."""

    requirement: str = ""  # "" when unset
    unset: str = ""  # why there is no requirement yet
    line: int | None = None  # where it is set in matrix/actions.yaml


@dataclass(frozen=True, kw_only=True)
class ActionPin:
    repo: str  # owner/name, or owner/name/path for an action in a subfolder
    sha: str
    tag: str  # the release the SHA belongs to, e.g. v4.2.2

    @property
    def ref(self) -> str:
        return f"{self.repo}@{self.sha}"

    def __str__(self) -> str:
        """The text after ``uses:`` in a workflow step."""
        return f"{self.ref} # {self.tag}"


@dataclass(frozen=True, kw_only=True)
class CiPins:
    actions: tuple[ActionPin, ...] = ()
    runners: dict[Arch, str | None] = field(default_factory=lambda: dict(DEFAULT_RUNNERS))  # None: not in CI
    python: str = DEFAULT_PYTHON
    kvm_runners: tuple[str, ...] = DEFAULT_KVM_RUNNERS  # runners known to have KVM: kvm cells there require it
    ccvm_pip: CcvmPip | None = None  # None: not declared (ccvm's own CI installs ccvm from its checkout)
    workflow: str = DEFAULT_WORKFLOW
    branch: str = DEFAULT_BRANCH
    path: Path | None = None  # matrix/actions.yaml, for messages

    def has_kvm(self, arch: Arch) -> bool:
        return self.runners[arch] in self.kvm_runners

    def in_ci(self, arch: Arch) -> bool:
        return self.runners[arch] is not None

    def action(self, repo: str) -> ActionPin:
        for pin in self.actions:
            if pin.repo == repo:
                return pin
        known = ", ".join(pin.repo for pin in self.actions) or "none"
        raise KeyError(f"action {repo!r} is not pinned in matrix/actions.yaml (pinned: {known})")


def _tag_from_line(path: Path, line: int) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").splitlines()[line - 1]
    except (OSError, UnicodeDecodeError, IndexError):
        return None
    match = _TAG_COMMENT.search(text)
    return match.group(1) if match else None


def _parse_pin(entry: Mapping) -> ActionPin:
    entry.reject_unknown_keys(["uses"], "an action")
    if "uses" not in entry:
        raise entry.error(None, "each action needs `uses: OWNER/REPO@SHA # TAG`")
    repo, sep, sha = str(entry["uses"]).partition("@")
    if not sep or not _REPO.fullmatch(repo):
        raise entry.error("uses", f"{entry['uses']!r} is not OWNER/REPO@SHA")
    if not _SHA.fullmatch(sha):
        raise entry.error("uses", f"{repo}: pin a full 40-digit lowercase commit SHA, not {sha!r} (tags can move)")
    tag = _tag_from_line(entry.path, entry.line_of("uses"))
    if tag is None:
        raise entry.error("uses", f"{repo}: put the release tag in a comment on the same line, e.g. `# v1.2.3`")
    return ActionPin(repo=repo, sha=sha, tag=tag)


def _parse_actions(doc: Mapping) -> tuple[ActionPin, ...]:
    entries = expect_sequence(doc.get("actions"), doc.path, doc.line_of("actions"), "actions")
    pins: dict[str, ActionPin] = {}
    for index, raw in enumerate(entries):
        pin = _parse_pin(expect_mapping(raw, entries.path, entries.line_of(index), "each action"))
        if pin.repo in pins:
            raise ConfigError(entries.path, entries.line_of(index), f"{pin.repo} is pinned twice; keep one")
        pins[pin.repo] = pin
    return tuple(pins.values())


def _parse_runners(doc: Mapping) -> dict[Arch, str | None]:
    if "runners" not in doc:
        return dict(DEFAULT_RUNNERS)
    runners_doc = expect_mapping(doc["runners"], doc.path, doc.line_of("runners"), "runners")
    runners: dict[Arch, str | None] = {}
    for key, label in runners_doc.items():
        try:
            arch = parse_axis_value("arch", key)
        except ValueError as exc:
            raise runners_doc.error(key, str(exc)) from None
        if label == NO_RUNNER and arch in OPTIONAL_RUNNERS:
            runners[arch] = None
            continue
        if label == NO_RUNNER:
            raise runners_doc.error(key, f"{arch} runs every job but the aarch64 ones: name a runner label")
        if not isinstance(label, str) or not _RUNNER.fullmatch(label):
            raise runners_doc.error(
                key, f"runner label {label!r} must be one word, e.g. ubuntu-24.04 (or a self-hosted runner's label)"
            )
        runners[arch] = label
    missing = [str(arch) for arch in Arch if arch not in runners]
    if missing:
        raise runners_doc.error(None, f"runners must name a runner for every arch; missing: {', '.join(missing)}")
    return {arch: runners[arch] for arch in Arch}


def _parse_kvm_runners(doc: Mapping) -> tuple[str, ...]:
    if "kvm_runners" not in doc:
        return DEFAULT_KVM_RUNNERS
    labels = expect_sequence(doc["kvm_runners"], doc.path, doc.line_of("kvm_runners"), "kvm_runners")
    for index, label in enumerate(labels):
        if not isinstance(label, str) or not _RUNNER.fullmatch(label):
            raise ConfigError(labels.path, labels.line_of(index), f"runner label {label!r} must be one word")
    return tuple(labels)


def _requirement_problem(text: str) -> str | None:
    """Why a ccvm_pip requirement is not one a hosted runner can install reproducibly, or None."""
    if _PINNED.fullmatch(text):
        return None
    direct = _DIRECT.fullmatch(text)
    if not direct:
        return f"{text!r} is not pinned (there is no ccvm on PyPI, and an unclaimed name is anyone's to take)"
    url = direct.group(1)
    if url.startswith("file:") or "://" not in url:
        return f"{url!r} is a path on this machine, which a GitHub runner does not have"
    if "+" in url.split("://", 1)[0]:
        return None if _VCS_AT_REF.fullmatch(url) else f"{url!r} names no revision: end it with @COMMIT"
    return None if url.startswith("https://") else f"{url!r}: use an https:// URL"


def _parse_ccvm_pip(doc: Mapping) -> CcvmPip | None:
    if "ccvm_pip" not in doc:
        return None
    value, line = doc["ccvm_pip"], doc.line_of("ccvm_pip")
    if isinstance(value, dict):
        entry = expect_mapping(value, doc.path, line, "ccvm_pip")
        entry.reject_unknown_keys(["unset"], "ccvm_pip")
        if not isinstance(entry.get("unset"), str) or not entry["unset"].strip():
            raise doc.error("ccvm_pip", "ccvm_pip is a pip requirement, or {unset: WHY} until you have one")
        return CcvmPip(unset=entry["unset"].strip(), line=line)
    if not isinstance(value, str):
        raise doc.error("ccvm_pip", f"ccvm_pip must be a pip requirement string ({CCVM_PIP_EXAMPLES})")
    problem = _requirement_problem(value.strip())
    if problem:
        raise doc.error("ccvm_pip", f"ccvm_pip: {problem}; set it to {CCVM_PIP_EXAMPLES}")
    return CcvmPip(requirement=value.strip(), line=line)


def _parse_workflow(doc: Mapping) -> str:
    name = doc.get("workflow", DEFAULT_WORKFLOW)
    if not isinstance(name, str) or not WORKFLOW_NAME.fullmatch(name) or name.endswith((".yml", ".yaml")):
        raise doc.error("workflow", f"workflow {name!r} must be a file name without .yml, e.g. ccvm")
    return name


def _parse_branch(doc: Mapping) -> str:
    branch = doc.get("branch", DEFAULT_BRANCH)
    if (
        not isinstance(branch, str)
        or not _BRANCH.fullmatch(branch)
        or ".." in branch
        or branch.endswith(("/", ".", ".lock"))
    ):
        raise doc.error("branch", f"branch {branch!r} must be a branch name such as main or master (no wildcards)")
    return branch


def parse_actions(doc: Mapping) -> CiPins:
    keys = ["actions", "runners", "kvm_runners", "python", "ccvm_pip", "workflow", "branch"]
    doc.reject_unknown_keys(keys, "actions.yaml")
    python = doc.get("python", DEFAULT_PYTHON)
    if not isinstance(python, str):  # YAML reads python: 3.10 as the number 3.1
        raise doc.error("python", f'python must be a quoted version string such as "3.12", not the YAML {python!r}')
    if not _PYTHON.fullmatch(python):
        raise doc.error("python", f'python {python!r} must be a version like "3.12" (quote it)')
    return CiPins(
        actions=_parse_actions(doc),
        runners=_parse_runners(doc),
        kvm_runners=_parse_kvm_runners(doc),
        python=python,
        ccvm_pip=_parse_ccvm_pip(doc),
        workflow=_parse_workflow(doc),
        branch=_parse_branch(doc),
        path=doc.path,
    )
