"""ccvm host against a seed-style project (tests/fixtures/seed-project): its
own bash wrapper whose dry run prints a scratch directory, declared in its
matrix/launcher.yaml, and its own TAP host script.  Everything here runs
the real wrapper and the real `ccvm host`; nothing is mocked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import run_ccvm
from tiers import require_tool

ROOT = Path(__file__).resolve().parent.parent
SEED = Path(__file__).resolve().parent / "fixtures" / "seed-project"
SEED_WRAPPER = SEED / "bin" / "ccvm"
SEED_SCRIPTS = [
    SEED / "bin" / "ccvm",
    SEED / "bin" / "ccvm-leaky",
    SEED / "stub" / "claude",
    SEED / "tests" / "host.sh",
]


def ccvm_host(cwd: Path, tmp_path: Path, *extra: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, dict]:
    junit = tmp_path / "host.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCVM_")}
    result = run_ccvm("host", "--junit", str(junit), *extra, cwd=cwd, timeout=timeout, env=env)
    cases = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            cases[f"{case.get('classname')}/{case.get('name')}"] = case
    return result, cases


def outcome(case: ET.Element) -> str:
    if case.find("failure") is not None or case.find("error") is not None:
        return "fail"
    return "skip" if case.find("skipped") is not None else "pass"


def by_outcome(cases: dict, wanted: str) -> set[str]:
    return {name for name, case in cases.items() if outcome(case) == wanted}


def message(case: ET.Element) -> str:
    node = case.find("failure") if case.find("failure") is not None else case.find("skipped")
    return "" if node is None else node.get("message", "")


def test_the_clean_wrapper_keeps_the_contract(tmp_path):
    result, cases = ccvm_host(SEED, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert by_outcome(cases, "fail") == set()
    passed = by_outcome(cases, "pass")
    assert "host.dry-run/prints-a-report" in passed
    # Read from the declared NUL-separated argv file, byte for byte.
    for name in ("spaces", "quotes", "newline", "empty-string", "non-ascii", "all-at-once"):
        assert f"host.argv/{name}" in passed
    for name in ("not-in-plan-or-output", "not-in-staged-files", "not-in-working-directory-or-reports"):
        assert f"host.secrets/{name}" in passed
    # As declared: the credential never staged, the settings copied (in the mode cp -aL keeps).
    for name in ("settings-staged", "credentials-never-staged", "host-config-untouched"):
        assert f"host.staging/{name}" in passed
    # A 0644 public key in the 0700 scratch directory, a 0644 settings copy: ccvm vm's rule, not this launcher's.
    assert "ccvm vm's rule" in message(cases["host.staging/scratch-private-0700"])
    # Both declared switches of the writable share change what the dry run stages.
    assert {"host.modes/share-writable-flag", "host.modes/share-writable-variable"} <= passed
    # The project's TAP script ran under bash (it uses pipefail and mapfile), with $CCVM the wrapper
    # itself (three of its lines grep it): eleven testcases.
    script = {name for name in cases if name.startswith("host.script.tests.host.sh/")}
    assert len(script) == 11 and script <= passed
    assert "host.script.tests.host.sh/the wrapper refuses to share the host's root" in script
    # What the style cannot show is skipped with its reason, never passed.
    skipped = by_outcome(cases, "skip")
    assert "host.secrets/not-in-qemu-argv" in skipped
    assert "only a JSON plan" in message(cases["host.secrets/not-in-qemu-argv"])
    assert "host.staging/malformed-settings-rejected" in skipped


def test_the_leaky_twin_fails_naming_the_file_not_the_secret(tmp_path):
    result, cases = ccvm_host(SEED, tmp_path, "--wrapper", "bin/ccvm-leaky", "--script", "none")
    assert result.returncode == 1, result.stdout + result.stderr
    leak = cases["host.secrets/not-in-staged-files"]
    assert outcome(leak) == "fail"
    assert "debug.log" in message(leak)
    assert "~/.claude/.credentials.json" in message(leak) or "$ANTHROPIC_API_KEY" in message(leak)
    # The same declaration, only the argv replaced: argv handling still passes.
    assert not any(name.startswith("host.argv/") for name in by_outcome(cases, "fail"))
    report = (tmp_path / "host.xml").read_text() + result.stdout + result.stderr
    assert "ccvm-planted-" not in report


def test_wrapper_and_script_work_without_a_matrix(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    assert not (project / "matrix").exists()
    result, cases = ccvm_host(
        project, tmp_path, "--wrapper", str(SEED / "bin" / "ccvm"), "--script", str(SEED / "tests" / "host.sh")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "prints scratch-dir" in message(cases["host.dry-run/prints-a-report"])
        or outcome(cases["host.dry-run/prints-a-report"]) == "pass"
    )
    # Nothing declares where the argv lands: those cases are skipped, saying so.
    spaces = cases["host.argv/spaces"]
    assert outcome(spaces) == "skip" and "argv_file" in message(spaces)
    assert len([n for n in cases if n.startswith("host.script.host.sh/")]) == 11
    assert "host.secrets/not-in-staged-files" in by_outcome(cases, "pass")
    # Nothing declared about staging: the credential need not be staged (it is not); the settings'
    # staging is not checked, saying what to declare.
    assert outcome(cases["host.staging/credentials-owner-only-if-staged"]) == "pass"
    settings = cases["host.staging/settings-staging"]
    assert outcome(settings) == "skip" and "staged: copy" in message(settings)
    assert by_outcome(cases, "fail") == set()


def write_script(path: Path, text: str, mode: int = 0o755) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


def test_a_missing_wrapper_is_one_error_line(project, tmp_path):
    result, _ = ccvm_host(project, tmp_path, "--wrapper", str(project / "nope"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "not an executable file" in result.stderr


def test_a_wrapper_that_is_not_executable_is_one_error_line(project, tmp_path):
    wrapper = write_script(project / "wrapper", "#!/bin/sh\necho /tmp\n", mode=0o644)
    result, _ = ccvm_host(project, tmp_path, "--wrapper", str(wrapper))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "not an executable file" in result.stderr


def test_a_declared_argv_that_is_missing_names_its_line(project, tmp_path):
    (project / "matrix").mkdir()
    (project / "matrix" / "launcher.yaml").write_text("name: x\nargv: [result/bin/ccvm]\n")
    result, _ = ccvm_host(project, tmp_path, "--script", "none")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "launcher.yaml:2:" in result.stderr and "result/bin/ccvm" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("exec sleep 600\n", "did not finish within 2s"),
        ("exit 0\n", "printed nothing"),
        ("echo /no/such/scratch/dir\n", "not an existing directory"),
        ("echo 'not a plan {'\n", "neither a JSON plan nor an existing directory"),
        ("echo broken >&2; exit 3\n", "exited 3: broken"),
    ],
    ids=["hangs", "prints-nothing", "missing-path", "garbage", "fails"],
)
def test_a_broken_dry_run_is_one_clear_failing_case(project, tmp_path, body, says):
    wrapper = write_script(project / "wrapper", "#!/bin/sh\n" + body)
    # Only the hanging one is held to a short dry-run timeout; the others keep the default (120 s), so that a
    # loaded host starting them slowly cannot turn their failure into a timeout.
    timeout = ("--timeout", "2") if "sleep" in body else ()
    started = time.monotonic()
    result, cases = ccvm_host(project, tmp_path, "--wrapper", str(wrapper), *timeout, timeout=300)
    assert time.monotonic() - started < 60  # the hanging one: not its sleep 600, nor the default 120 s timeout
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    preflight = cases["host.dry-run/prints-a-report"]
    assert outcome(preflight) == "fail" and says in message(preflight), message(preflight)
    # Every other case is skipped, pointing at that one: none passes.
    others = {name for name in cases if not name.startswith("host.dry-run/")}
    assert others and others == by_outcome(cases, "skip")


def run_script(project: Path, tmp_path: Path, script: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    result, cases = ccvm_host(project, tmp_path, "--wrapper", str(SEED_WRAPPER), "--script", str(script), *extra)
    prefix = f"host.script.{script.name}/"
    return result, {name.removeprefix(prefix): case for name, case in cases.items() if name.startswith(prefix)}


def test_tap_and_ok_fail_lines_each_become_a_testcase(project, tmp_path):
    script = write_script(
        project / "checks.sh",
        """#!/usr/bin/env bash
set -o pipefail
echo "TAP version 13"
echo "1..4"
echo "ok 1 - tap passes"
echo "not ok 2 - tap fails"
echo "ok 3 - tap skips # SKIP no network"
echo "not ok 4 - tap todo # TODO later"
echo "ok - common passes" >&2
echo "FAIL   -   common fails: it broke" >&2
echo "PASS: automake style"
echo "Ok: mixed case"
echo "[ \\"$CCVM\\" ] and HOME=$HOME" >/dev/null
exit 1
""",
    )
    result, cases = run_script(project, tmp_path, script)
    assert result.returncode == 1
    assert {name: outcome(case) for name, case in cases.items()} == {
        "tap passes": "pass",
        "tap fails": "fail",
        "tap skips": "skip",
        "tap todo": "skip",
        "common passes": "pass",
        "common fails": "fail",
        "automake style": "pass",
        "mixed case": "pass",
    }
    assert message(cases["tap skips"]) == "SKIP no network"
    assert message(cases["common fails"]) == "it broke"
    assert "TODO later" in message(cases["tap todo"])


def test_the_script_runs_with_its_shebang_from_the_project_root_with_ccvm_set(project, tmp_path):
    script = write_script(
        project / "env.sh",
        """#!/usr/bin/env bash
set -euo pipefail
[ "$PWD" = "$EXPECTED_ROOT" ] && echo "ok - runs from the project root" || echo "FAIL - runs from $PWD"
[ "$CCVM" = "$EXPECTED_LAUNCHER" ] && echo "ok - CCVM is the launcher itself" || echo "FAIL - CCVM is $CCVM"
dir=$("$CCVM" 'a b')
[ -d "$dir" ] && echo "ok - the dry-run hook is on" || echo "FAIL - CCVM printed $dir"
[ -f "$HOME/.claude/.credentials.json" ] && echo "ok - the fixture home has credentials" || echo "FAIL - no creds"
echo "4 passed, 0 failed"
""",
        mode=0o644,  # not executable: ccvm runs the interpreter its #! names
    )
    env_root = str(project.resolve())
    junit = tmp_path / "host.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ccvm",
            "host",
            "--junit",
            str(junit),
            "--wrapper",
            str(SEED_WRAPPER),
            "--script",
            str(script),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CCVM_")},
            "EXPECTED_ROOT": env_root,
            "EXPECTED_LAUNCHER": str(SEED_WRAPPER.resolve()),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    names = {
        c.get("name"): outcome(c) for c in ET.parse(junit).getroot().iter("testcase") if "env.sh" in c.get("classname")
    }
    assert names == {
        "runs from the project root": "pass",
        "CCVM is the launcher itself": "pass",
        "the dry-run hook is on": "pass",
        "the fixture home has credentials": "pass",
    }


def test_a_non_zero_exit_without_a_failing_line_is_one_failing_case(project, tmp_path):
    script = write_script(
        project / "dies.sh", "#!/bin/sh\necho 'ok - first'\necho 'something went wrong' >&2\nexit 4\n"
    )
    _, cases = run_script(project, tmp_path, script)
    assert outcome(cases["first"]) == "pass"
    exit_case = cases["exit-status"]
    assert outcome(exit_case) == "fail" and "exited 4" in message(exit_case)
    assert "something went wrong" in exit_case.find("failure").text


def test_a_closing_summary_is_checked_against_the_lines(project, tmp_path):
    script = write_script(
        project / "lies.sh", "#!/bin/sh\necho 'ok - one'\necho 'ok - two'\necho '3 passed, 0 failed'\n"
    )
    result, cases = run_script(project, tmp_path, script)
    assert result.returncode == 1
    assert outcome(cases["summary"]) == "fail" and "2 passed, 0 failed" in message(cases["summary"])


def test_a_tap_plan_that_does_not_match_fails(project, tmp_path):
    script = write_script(project / "short.sh", "#!/bin/sh\necho 1..3\necho 'ok 1 - only one'\n")
    _, cases = run_script(project, tmp_path, script)
    assert outcome(cases["tap-plan"]) == "fail" and "1..3" in message(cases["tap-plan"])


def test_a_script_without_a_shebang_is_a_failing_case(project, tmp_path):
    script = write_script(project / "plain.sh", "echo 'ok - never run'\n")
    result, cases = run_script(project, tmp_path, script)
    assert result.returncode == 1
    assert set(cases) == {"interpreter"}
    assert "no #! line" in message(cases["interpreter"])


def test_a_script_that_never_ends_is_killed_with_its_group(project, tmp_path):
    pidfile = project / "child.pid"
    script = write_script(
        project / "forever.sh",
        f"#!/bin/sh\necho 'ok - started'\nsleep 600 &\necho $! >{pidfile}\nwait\n",
    )
    started = time.monotonic()
    # 10 s: the script's first lines (its result line, the pid file) are written long before, on a loaded host too.
    result, cases = run_script(project, tmp_path, script, "--script-timeout", "10")
    assert time.monotonic() - started < 300  # not the script's sleep 600: halfway to it
    assert result.returncode == 1
    assert outcome(cases["started"]) == "pass"
    assert outcome(cases["timeout"]) == "fail" and "did not finish within 10s" in message(cases["timeout"])
    child = int(pidfile.read_text())
    # A killed process vanishes in milliseconds; 60 s only bounds a wait for one that does not.
    deadline = time.monotonic() + 60
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists(), "the script's background child outlived it"


@pytest.mark.parametrize("tool", ["shellcheck", "shfmt"])
def test_the_fixture_scripts_are_clean(tool):
    binary = Path(sys.executable).parent / tool
    assert binary.exists(), f"{tool} comes from the lint extra"
    args = [str(binary), *(str(p) for p in SEED_SCRIPTS)]
    if tool == "shfmt":
        args[1:1] = ["-ci", "-d"]  # the fixtures are outside .editorconfig's reach: its settings, given here
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_fixture_needs_bash_not_sh():
    """The project script relies on bash (pipefail, mapfile): under sh it fails, so passing proves the shebang."""
    dash = require_tool("dash")  # Debian's /bin/sh; missing: skipped locally, failed under CI
    result = subprocess.run(
        [dash, str(SEED / "tests" / "host.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CCVM": str(SEED / "bin" / "ccvm")},
    )
    assert result.returncode != 0


def test_a_secret_a_script_prints_is_redacted_everywhere_in_the_report_even_in_case_names(project, tmp_path):
    script = write_script(
        project / "host.sh",
        '#!/usr/bin/env bash\necho "ok - k $(cat "$HOME/.claude/.credentials.json")"\n'
        'echo "not ok 2 - env $ANTHROPIC_API_KEY" >&2\n',
    )
    result, cases = run_script(project, tmp_path, script)
    report = (tmp_path / "host.xml").read_text() + result.stdout + result.stderr
    assert "ccvm-planted-" not in report
    assert any("<secret from ~/.claude/.credentials.json>" in name for name in cases)


def test_a_script_whose_env_interpreter_is_missing_is_an_interpreter_case(project, tmp_path):
    script = write_script(project / "odd.sh", "#!/usr/bin/env ccvm-no-such-interpreter\necho 'ok - never run'\n")
    result, cases = run_script(project, tmp_path, script)
    assert result.returncode == 1
    assert set(cases) == {"interpreter"} and "ccvm-no-such-interpreter" in message(cases["interpreter"])


@pytest.mark.parametrize(
    "hang", ["exec sleep 1000", "sleep 1000"], ids=["replaces-itself-with-sleep", "waits-on-its-child"]
)
def test_a_hanging_dry_run_inside_a_script_is_held_to_the_dry_run_timeout(project, tmp_path, hang):
    """$CCVM is the launcher itself, so no wrapper of ccvm's bounds it: ccvm watches the script's
    processes and stops a dry run that outlives the dry-run timeout, with what it started."""
    pidfile = project / "launcher.pid"
    wrapper = write_script(project / "hang.sh", f"#!/bin/sh\necho $$ >{pidfile}\n{hang}\n")
    body = 'if "$CCVM" -- x; then echo "ok - ran"; else echo "not ok - hung"; fi\n'
    script = write_script(project / "host.sh", "#!/usr/bin/env bash\n" + body)
    started = time.monotonic()
    result, cases = ccvm_host(project, tmp_path, "--wrapper", str(wrapper), "--script", str(script), "--timeout", "2")
    assert time.monotonic() - started < 300  # the script timeout is 600 s: halfway to it
    assert result.returncode == 1
    assert "host.script.host.sh/hung" in cases
    stopped = cases["host.script.host.sh/dry-run-timeout"]
    assert outcome(stopped) == "fail" and "did not finish within 2s" in message(stopped), message(stopped)
    assert "FAIL dry-run-timeout: a dry run did not finish within 2s" in result.stdout
    assert not Path(f"/proc/{int(pidfile.read_text())}").exists(), "the hanging dry run outlived its stop"


def test_a_diagnostic_on_stderr_is_output_not_a_result(project, tmp_path):
    script = write_script(
        project / "fetch.sh",
        "#!/bin/sh\necho 'error: mirror slow, retrying' >&2\necho 'failure: first mirror, trying the next' >&2\n"
        "echo 'ok - fetched'\nexit 0\n",
    )
    result, cases = run_script(project, tmp_path, script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {name: outcome(case) for name, case in cases.items()} == {"fetched": "pass"}


def test_a_failing_script_says_why_on_screen(project, tmp_path):
    script = write_script(project / "dies.sh", "#!/bin/sh\necho 'mktemp: cannot create /nope' >&2\nexit 3\n")
    result, _ = run_script(project, tmp_path, script)
    assert result.returncode == 1
    assert "FAIL exit-status: exited 3 without a failing result line" in result.stdout
    assert "mktemp: cannot create /nope" in result.stdout  # its last lines, not only in the JUnit file


def alive_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_a_script_that_kills_its_own_process_group_is_a_failing_case_and_leaves_nothing(project, tmp_path):
    """Its child ignores SIGTERM and holds the script's output open: once the script is gone, the
    child is stopped too, and the run does not wait for the script timeout."""
    marker = f"ccvm-test-{os.getpid()}-{time.monotonic_ns()}"
    script = write_script(
        project / "suicide.sh",
        f"#!/usr/bin/env bash\necho 'ok - started'\n"
        f"(trap '' TERM; : >{project}/trapped; exec -a {marker} sleep 600) &\n"
        f"until [ -e {project}/trapped ]; do sleep 0.05; done\nkill -TERM 0\nsleep 30\n",  # once the trap is set
    )
    started = time.monotonic()
    result, cases = run_script(project, tmp_path, script, "--script-timeout", "120")
    assert time.monotonic() - started < 60  # not the script timeout (120 s) that the child's open output would hold
    assert result.returncode == 1
    assert outcome(cases["started"]) == "pass"
    ended = cases["exit-status"]
    assert outcome(ended) == "fail" and "killed by SIGTERM" in message(ended), message(ended)
    deadline = time.monotonic() + 60  # the child is killed as the script ends; 60 s bounds a wait for one that is not
    while alive_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive_with(marker) == []


def test_a_declared_dry_run_variable_the_launcher_never_reads_is_one_failing_case(tmp_path):
    project = tmp_path / "seed"
    shutil.copytree(SEED, project)
    declaration = project / "matrix" / "launcher.yaml"
    declaration.write_text(declaration.read_text().replace("variable: CCVM_DRYRUN", "variable: SEED_DRYRUN"))
    result, cases = ccvm_host(project, tmp_path, "--script", "none")
    assert result.returncode == 1, result.stdout + result.stderr
    preflight = message(cases["host.dry-run/prints-a-report"])
    assert "bin/ccvm never mentions SEED_DRYRUN, the declared dry-run variable" in preflight, preflight
    assert "it mentions CCVM_DRYRUN: declare that" in preflight
    assert by_outcome(cases, "fail") == {"host.dry-run/prints-a-report"}
    assert alive_with(str(project)) == []


STAGES_THE_CREDENTIAL = """#!/bin/sh
# stages a byte-exact copy of the credential, mode 0644, in a scratch directory of mode $1
dir=$(mktemp -d "$TMPDIR/stage.XXXXXX")
chmod {dir_mode} "$dir"
cp "$HOME/.claude/.credentials.json" "$dir/cred"
chmod 644 "$dir/cred"
echo "$dir"
"""


@pytest.mark.parametrize(
    ("staged", "dir_mode", "failing"),
    [
        (None, "700", set()),  # a 0700 directory keeps others out of the 0644 copy
        (None, "755", {"not-in-staged-files", "credentials-owner-only-if-staged"}),
        ("owner-only", "700", set()),
        ("owner-only", "755", {"not-in-staged-files", "credentials-staged-owner-only"}),
        ("never", "700", {"credentials-never-staged"}),
    ],
)
def test_a_staged_credential_is_checked_as_declared(project, tmp_path, staged, dir_mode, failing):
    write_script(project / "wrapper", STAGES_THE_CREDENTIAL.replace("{dir_mode}", dir_mode))
    (project / "matrix").mkdir()
    entry = (
        "~/.claude/.credentials.json" if staged is None else f"{{path: ~/.claude/.credentials.json, staged: {staged}}}"
    )
    (project / "matrix" / "launcher.yaml").write_text(
        f"argv: [./wrapper]\ndry_run: {{prints: scratch-dir}}\nsecrets:\n  files: [{entry}]\n"
    )
    result, cases = ccvm_host(project, tmp_path, "--script", "none")
    bad = {name.split("/")[1] for name in by_outcome(cases, "fail")}
    assert bad == failing, result.stdout
    assert result.returncode == (1 if failing else 0)
    if "not-in-staged-files" in failing:
        assert "cred is a copy of ~/.claude/.credentials.json that others can read" in message(
            cases["host.secrets/not-in-staged-files"]
        )


def test_host_scripts_find_the_launcher_in_the_declared_variable(project, tmp_path):
    (project / "bin").mkdir()
    shutil.copy(SEED_WRAPPER, project / "bin" / "ccvm")
    (project / "stub").mkdir()
    shutil.copy(SEED / "stub" / "claude", project / "stub" / "claude")
    write_script(
        project / "host.sh",
        '#!/bin/sh\n[ "$SEED_LAUNCHER" = "$PWD/bin/ccvm" ] && echo "ok - named" || echo "not ok - $SEED_LAUNCHER"\n'
        '[ -z "${CCVM:-}" ] && echo "ok - CCVM unset" || echo "not ok - CCVM is $CCVM"\n',
    )
    (project / "matrix").mkdir()
    (project / "matrix" / "launcher.yaml").write_text(
        "argv: [bin/ccvm]\nhost_scripts: [host.sh]\nlauncher_variable: SEED_LAUNCHER\n"
    )
    env_less_ccvm = {k: v for k, v in os.environ.items() if k != "CCVM"}
    result = run_ccvm("host", "--junit", str(tmp_path / "h.xml"), cwd=project, timeout=300, env=env_less_ccvm)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "host.script.host.sh: 2 passed, 0 failed" in result.stdout


def _adopted_without_launcher(tmp_path: Path) -> Path:
    """The seed project as an adopted one (its actions.yaml has ccvm_pip) that declares no launcher."""
    project = tmp_path / "adopted"
    shutil.copytree(SEED, project)
    (project / "matrix" / "launcher.yaml").unlink()
    actions = project / "matrix" / "actions.yaml"
    actions.write_text(actions.read_text() + "ccvm_pip: {unset: not chosen yet}\n")
    return project


NOT_DECLARED = "no matrix/launcher.yaml declares this project's launcher, so it is not tested"


def test_an_adopted_project_without_a_declared_launcher_is_not_reported_green_by_ccvms_launcher(tmp_path):
    """ccvm vm passing would say nothing about the project: ccvm host runs nothing and skips, saying why;
    under CI (or --require launcher) that fails."""
    project = _adopted_without_launcher(tmp_path)
    result, cases = ccvm_host(project, tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"ccvm host: {NOT_DECLARED}"), result.stdout
    assert list(cases) == ["host.launcher/declared"] and outcome(cases["host.launcher/declared"]) == "skip"
    assert NOT_DECLARED in cases["host.launcher/declared"].find("skipped").get("message")
    required, cases = ccvm_host(project, tmp_path, "--require", "launcher", timeout=120)
    assert required.returncode == 1, required.stdout + required.stderr
    assert outcome(cases["host.launcher/declared"]) == "fail" and "(required: --require launcher)" in required.stdout
    assert required.stderr.strip() == (
        "ccvm: error: the project's launcher is required here, and none is declared; see above"
    )


def test_an_adopted_project_without_a_declared_launcher_boots_nothing(tmp_path):
    """ccvm boot skips every cell rather than boot ccvm's embedded launcher in the project's stead."""
    project = _adopted_without_launcher(tmp_path)
    junit = tmp_path / "boot.xml"
    result = run_ccvm("boot", "--junit", str(junit), "--reports", str(tmp_path / "r"), cwd=project, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert cases and all(outcome(case) == "skip" for case in cases)
    assert all(NOT_DECLARED in case.find("skipped").get("message") for case in cases)
    assert not (tmp_path / "r" / "boot").exists() or not any((tmp_path / "r" / "boot").rglob("console*.log"))
    env = {**os.environ, "CI": "true"}
    failed = run_ccvm(
        "boot", "--junit", str(junit), "--reports", str(tmp_path / "r"), cwd=project, env=env, timeout=120
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "(required: CI is set (--allow-missing launcher exempts it))" in failed.stdout
