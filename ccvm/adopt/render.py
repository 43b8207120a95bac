"""The files ``ccvm init`` writes, as text, from what discover.py found.

Each guess (a default taken because the project said nothing, or something
read from text rather than evaluated) is returned with the files, so the
command can say what it guessed.  Values are written as JSON, which is also
YAML, so no name or glob can break the files' syntax."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from ccvm.adopt.discover import INIT_MARK, Findings
from ccvm.adopt.formatters import style_yaml_text
from ccvm.adopt.scripts import Kind
from ccvm.adopt.source import PipGuess
from ccvm.matrix.axes import Arch
from ccvm.matrix.packaged import DEFAULTS  # copies of ccvm's own matrix/guest.yaml, actions.yaml

MACHINE = {"x86_64-linux": ("x86_64", "q35"), "aarch64-linux": ("aarch64", "virt")}
HEADER = f"{INIT_MARK} from what it found in this repository; `ccvm init --force` writes it again.\n"
HEADER += "# To make it your own, delete this first line: ccvm then never rewrites it."


# The matrix files init writes; launcher.yaml only when it found a launcher and the project declares none,
# docs.yaml only when there is a book.  baseline.yaml is not one: it is the project's findings, recorded once
# (commands/init.py) and changed only by `ccvm baseline`.
MATRIX_FILES = tuple(
    f"matrix/{name}.yaml" for name in ("actions", "boot", "builds", "docs", "gate", "guest", "launcher", "style")
)


@dataclass(frozen=True, kw_only=True)
class Rendered:
    files: dict[str, str]  # relative path -> text
    guesses: tuple[str, ...]


def _j(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def systems(findings: Findings) -> tuple[list[str], list[str]]:
    found = findings.flake.ccvm_systems if findings.flake else ()
    if not found and findings.launcher is not None:  # the systems the declared launcher is built for
        found = tuple(step.system for step in findings.launcher.build)
    ordered = [arch.nix_system for arch in Arch if arch.nix_system in found]
    if ordered:
        return ordered, []
    where = "the flake" if findings.flake else "a flake or a launcher build"
    return ["x86_64-linux"], [f"no x86_64-linux or aarch64-linux in {where}: boot cells for x86_64 only"]


def boot_yaml(findings: Findings) -> tuple[str, list[str]]:
    chosen, guesses = systems(findings)
    lines = [
        HEADER,
        "# Boot cells, one per system the flake builds for: arch x accel x machine (see ccvm's docs, The matrix).",
        "defaults:",
        "  memory: 512M",
        "  cores: 2",
        "  timeout: 120",
        "  retries: 0",
        "cells:",
    ]
    for system in chosen:
        arch, machine = MACHINE[system]
        lines += [f"  - arch: {arch}", "    accel: [kvm, tcg]", f"    machine: {machine}"]
    return "\n".join(lines) + "\n", guesses


def builds_yaml(findings: Findings) -> tuple[str, list[str]]:
    chosen, _ = systems(findings)
    flake = findings.flake
    packages = flake.packages if flake else {}
    targets: dict[str, list[str]] = {}
    undecided = []  # systems whose `default` is kept though it may be another package under a second name
    for system in chosen:
        names = packages.get(system, ())
        alias = flake.default_is.get(system, "") if flake else ""
        for name in names:
            if name != "default" or alias not in names:  # `default` is left out only as another's second name
                targets.setdefault(name, []).append(system)
        if "default" in names and len(names) > 1 and alias not in names:
            undecided.append(system)
    body = "".join(f"  {_j(name)}: {_j(systems_)}\n" for name, systems_ in targets.items())
    lines = [HEADER, "# Build targets: the flake's packages, on the systems it builds them for.", "flake: ."]
    lines += ["timeout: 3600", "targets:" + ("" if body else " {}")]
    guesses = []
    if not targets:
        where = f"for {', '.join(chosen)}" if any(packages.values()) else "found"
        guesses.append(f"no flake packages {where}: builds.yaml has no targets")
    if undecided:
        guesses.append(
            f"packages.default ({', '.join(undecided)}) is a build target: the flake's text does not show it is"
            " one of the other packages (if it is, delete it from builds.yaml, or it is built twice)"
        )
    if findings.flake and findings.flake.unsure:
        guesses.append(
            "not sure from the flake's text, so left out of builds.yaml and the flake-check list: "
            + "; ".join(findings.flake.unsure)
        )
    return "\n".join(lines) + "\n" + body, guesses


def _check(name: str, run: list[str], reproduce: str, *, junit: str = "", timeout: int = 0) -> str:
    fields = [f"run: {_j(run)}", f"reproduce: {_j(reproduce)}"]
    fields += [f"junit: {_j(junit)}"] if junit else []
    fields += [f"timeout: {timeout}"] if timeout else []
    return f"  {name}:\n" + "".join(f"    {field}\n" for field in fields)


HOST_JUNIT = "reports/junit/gate-host.xml"
LAUNCHER_DOCS = "ccvm's docs, Your own launcher (docs/src/launcher.md)"


def launcher_under_test(findings: Findings) -> bool:
    """Whether the project has a launcher of its own: declared, or found (init declares it)."""
    return findings.launcher is not None or bool(findings.found and findings.found.argv)


def host_args(findings: Findings) -> list[str]:
    """`ccvm host`'s arguments for the gate's host check ([] with no launcher of the project's own: the
    host suite would test ccvm's embedded launcher, not the project). A launcher built from a flake
    package is built first (--build): a fresh checkout has no ./result."""
    if findings.launcher is not None:
        return ["host", *(["--build"] if findings.launcher.build else [])]
    if findings.found and findings.found.argv:
        return ["host", *(["--build"] if findings.found.package else [])]
    return []


def boots(findings: Findings) -> bool:
    """Whether `ccvm boot` boots the project's own launcher: a declared one with boot scenarios."""
    return findings.launcher is not None and bool(findings.launcher.boot.scenarios)


def launcher_yaml(findings: Findings) -> str:
    found = findings.found
    assert found is not None and found.argv
    lines = [
        HEADER,
        f"# The launcher under test: {found.source} reads {found.variable} (see ccvm's docs, Your own launcher).",
        "# Declare its share switches (share:), the environment per cell (env:) and boot scenarios (boot:)",
        "# to have ccvm host check the share modes and ccvm boot boot it on every cell.",
        f"name: {_j(Path(found.argv[-1]).name)}",
    ]
    if found.package:
        lines.append("build:")
        lines += [f"  {_j(system)}: {{flake: {_j('.#' + found.package)}}}" for system in found.systems]
    lines.append(f"argv: {_j(list(found.argv))}")
    lines += ["dry_run:", f"  variable: {_j(found.variable)}", '  value: "1"']
    hosts = [script.path for script in findings.scripts if script.kind is Kind.HOST]
    lines.append(f"host_scripts: {_j(hosts)}")
    return "\n".join(lines) + "\n"


def host_guesses(findings: Findings) -> list[str]:
    guesses = []
    found = findings.found
    if findings.launcher is None and found is not None:
        what = "matrix/launcher.yaml declares it; check it" if found.argv else "declare it in matrix/launcher.yaml"
        guesses.append(f"launcher: {found.how}: {what}")
        if found.others:
            guesses.append(f"launcher: these read a dry-run variable too, not declared: {', '.join(found.others)}")
    if not launcher_under_test(findings):
        guesses.append(
            "no launcher found (no script or source file reads CCVM_DRYRUN or another *_DRYRUN variable): the "
            "gate, noxfile and workflow get no host or boot check (they would test ccvm's embedded launcher, "
            f"not this project); to declare one, write matrix/launcher.yaml (at least argv, dry_run.variable and "
            f"host_scripts; see {LAUNCHER_DOCS}) and run ccvm init --force"
        )
    elif not boots(findings):
        guesses.append(
            "the launcher declares no boot scenarios: no boot checks; add `boot: {scenarios: [...]}` to "
            "matrix/launcher.yaml and run ccvm init --force to boot it on every cell"
        )
    for script in findings.scripts:
        if script.kind is Kind.HOST:
            continue
        left = {
            Kind.BOOT: "a boot test, never a host test: run it by hand",
            Kind.STUB: "the guest's stub program, not a test",
            Kind.FLAKE_CHECK: "runs only through nix flake check (the gate's flake-check), left out of ccvm host",
            Kind.OTHER: "not wired",
        }[script.kind]
        guesses.append(f"{script.path}: {left} ({script.why})")
    if findings.launcher is not None:
        missing = [path for path in findings.host_tests if path not in findings.launcher.host_scripts]
        if missing:
            guesses.append(
                f"{', '.join(missing)} not in matrix/launcher.yaml host_scripts: `ccvm host` does not run them"
            )
    return guesses


def _fmt(findings: Findings) -> list[str]:
    """The gate's fmt check, shfmt on the shell scripts: none for a project without one (it would check nothing)."""
    return ["fmt"] if findings.shell else []


def _gate_checks(findings: Findings) -> dict[str, str]:
    checks = {"lint": _check("lint", ["ccvm", "lint"], "ccvm lint", timeout=600)}
    if _fmt(findings):
        checks["fmt"] = _check(
            "fmt",
            ["ccvm", "fmt", "--tool", "shfmt", "--junit", "reports/junit/gate-fmt.xml"],
            "ccvm fmt --tool shfmt",
            junit="reports/junit/gate-fmt.xml",
            timeout=600,
        )
    checks["drift"] = _check("drift", ["ccvm", "generate", "--check"], "ccvm generate", timeout=600)
    if findings.book:  # the book is recorded in matrix/docs.yaml
        checks["docs"] = _check("docs", ["ccvm", "docs"], "ccvm docs", timeout=900)
    host = host_args(findings)
    if host:
        checks["host"] = _check(
            "host", ["ccvm", *host, "--junit", HOST_JUNIT], shlex.join(["ccvm", *host]), junit=HOST_JUNIT, timeout=900
        )
    if findings.flake:
        names = findings.flake.check_names()
        covers = f"  # nix flake check: the flake's checks ({', '.join(names) or 'none found'})\n"
        checks["flake-check"] = covers + _check(
            "flake-check",
            ["ccvm", "flake-check", "--require", "nix", "--junit", "reports/junit/gate-flake-check.xml"],
            "ccvm flake-check (or nix flake check)",
            timeout=3600,
        )
    return checks


def gate_yaml(findings: Findings) -> tuple[str, list[str]]:
    checks = _gate_checks(findings)
    chosen, _ = systems(findings)
    boot = []
    for system in chosen if boots(findings) else []:
        arch, machine = MACHINE[system]
        cell = f"{arch}-tcg-{machine}"
        junit = f"reports/junit/gate-boot-{cell}.xml"
        checks[f"boot-{cell}"] = _check(
            f"boot-{cell}", ["ccvm", "boot", "--cell", cell, "--junit", junit], f"ccvm boot --cell {cell}", junit=junit
        )
        boot.append(f"boot-{cell}")
    code = ["lint", *_fmt(findings), "drift", *(["host"] if host_args(findings) else [])]
    rules = []
    if findings.book:
        book_paths = [f"{findings.book}/**"] if findings.book != "." else ["book.toml", "**/*.md"]
        rules.append(([*book_paths, "*.md", "matrix/docs.yaml"], ["docs", "drift"]))
    settings = [".shellcheckrc", "treefmt.toml", ".editorconfig", "pyproject.toml", "ruff.toml", ".ruff.toml"]
    settings += ["matrix/style.yaml", "matrix/baseline.yaml"]  # what fmt and lint run with, and what they know
    rules.append((["*.sh", "tests/**", "lib/**", "bin/**", *settings], code))
    if findings.flake:
        rules.append((["*.nix", "flake.lock"], ["flake-check", *_fmt(findings)]))
    if launcher_under_test(findings):
        rules.append((["matrix/launcher.yaml"], ["host", *boot]))
    host = ["host"] if host_args(findings) else []  # ccvm vm and the declared launcher read the matrix
    rules.append((["matrix/**", ".github/**", "noxfile.py"], ["drift", *host, *boot[:1]]))
    if boot:
        rules.append((["matrix/boot.yaml", "matrix/guest.yaml"], boot))
    lines = [
        HEADER,
        "# The definition of done: what `ccvm gate` requires for a change (see ccvm's docs, The merge gate).",
    ]
    lines += [f"base: {_j(findings.base)}", "checks:"]
    text = "\n".join(lines) + "\n" + "".join(checks.values()) + "rules:\n"
    text += "".join(f"  - paths: {_j(paths)}\n    require: {_j(require)}\n" for paths, require in rules)
    text += f"otherwise: {_j(code)}\n"
    guesses = [f"gate base branch: {findings.base} (git has no current branch)"] if findings.base_guessed else []
    return text, guesses


def docs_yaml(findings: Findings) -> tuple[str, list[str]]:
    """matrix/docs.yaml: the book ``ccvm docs`` checks, and the chapters a build makes."""
    lines = [
        HEADER,
        "# The documentation `ccvm docs` checks (see ccvm's docs, Static checks).",
        f"book: {_j(findings.book)}",
    ]
    lines.append("# Chapters a build makes (listed in SUMMARY.md, not in the repository), relative to the book's src:")
    lines.append("# never reported missing.")
    if findings.book_generated:
        lines.append("generated:")
        lines += [f"  - {_j(chapter)}  # named by {made_by}" for chapter, made_by in findings.book_generated]
    else:
        lines.append("generated: []")
    guesses = [
        f"{chapter}: listed in the book's SUMMARY.md with no file; {made_by} names it, so a build makes it "
        "(matrix/docs.yaml generated)"
        for chapter, made_by in findings.book_generated
    ]
    return "\n".join(lines) + "\n", guesses


def style_yaml(findings: Findings) -> tuple[str, list[str]]:
    """matrix/style.yaml from the project's own settings (ccvm.adopt.formatters), and what could not be read."""
    return style_yaml_text(findings.style, HEADER), list(findings.style.notes)


def actions_yaml(pip: PipGuess, workflow: str, branch: str) -> str:
    """ccvm's own pins (the package's copy of matrix/actions.yaml), then what only an adopted project declares."""
    value = _j(pip.requirement) if pip.requirement else "{unset: " + _j(pip.unset) + "}"
    lines = [
        "",
        "# Where the generated workflow installs ccvm from (`ccvm init` guessed it from how the ccvm",
        "# that ran it was installed): a pinned pip requirement, ccvm @ git+https://HOST/OWNER/ccvm.git@COMMIT",
        "# or ccvm==VERSION from your own package index (there is no ccvm on PyPI). While it is",
        "# {unset: WHY}, every job fails at its first step, saying so. Run `ccvm generate` after a change.",
        f"ccvm_pip: {value}",
        "",
        "# The generated workflow is .github/workflows/<workflow>.yml, named <workflow> (`ccvm init --workflow NAME`).",
        f"workflow: {_j(workflow)}",
        "",
        "# Pushes to this branch run the workflow (pull requests always do): the branch `ccvm init` found,",
        "# as matrix/gate.yaml's base. Change both if the default branch is another.",
        f"branch: {_j(branch)}",
    ]
    return (DEFAULTS / "actions.yaml").read_text(encoding="utf-8") + "\n".join(lines) + "\n"


def render(findings: Findings, *, pip: PipGuess, workflow: str) -> Rendered:
    files: dict[str, str] = {}
    guesses: list[str] = []
    if findings.flake and findings.flake.how != "nix flake show":
        guesses.append(
            f"the flake's systems, checks and packages were read from flake.nix's text ({findings.flake.why_text})"
        )
    if not findings.flake:
        guesses.append("no flake.nix: no builds, no flake-check")
    for name, make in (("boot", boot_yaml), ("builds", builds_yaml), ("gate", gate_yaml), ("style", style_yaml)):
        text, more = make(findings)
        files[f"matrix/{name}.yaml"] = text
        guesses += more
    if findings.book:
        files["matrix/docs.yaml"], more = docs_yaml(findings)
        guesses += more
    files["matrix/guest.yaml"] = HEADER + "\n" + (DEFAULTS / "guest.yaml").read_text(encoding="utf-8")
    files["matrix/actions.yaml"] = HEADER + "\n" + actions_yaml(pip, workflow, findings.base)
    if findings.launcher is None and findings.found is not None and findings.found.argv:
        files["matrix/launcher.yaml"] = launcher_yaml(findings)
    guesses += host_guesses(findings)
    guesses.append(pip.note)
    return Rendered(files=dict(sorted(files.items())), guesses=tuple(guesses))
