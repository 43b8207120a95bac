"""``ccvm boot`` through a declared launcher (matrix/launcher.yaml).

The seed-style fixture project (tests/fixtures/seed-project) boots ccvm's
embedded kernel and initramfs with real QEMU through its own bin/ccvm on
both tcg cells.  The other tests declare small shell launchers of their own
(no QEMU under them: what they test is how ccvm drives, reads, times out
and kills a launcher, whatever it boots); they still need QEMU installed,
since a cell whose QEMU is missing is skipped before its launcher starts.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import ccvm_argv, run_ccvm
from junit_schema import assert_valid
from nixtest import offline_env

SEED = Path(__file__).resolve().parent / "fixtures" / "seed-project"
MATRIX_FILES = ("boot.yaml", "guest.yaml", "builds.yaml", "gate.yaml", "actions.yaml")
CELLS = ("x86_64-tcg-q35", "aarch64-tcg-virt")


def junit_cases(path: Path) -> dict[str, dict[str, ET.Element]]:
    """suite name -> case name -> testcase element, the file checked against the JUnit schema."""
    assert_valid(path)
    root = ET.parse(path).getroot()
    return {suite.get("name"): {case.get("name"): case for case in suite.iter("testcase")} for suite in root}


def failure_of(case: ET.Element) -> ET.Element | None:
    return case.find("failure")


def ccvm_boot(project: Path, *args: str, env: dict | None = None, timeout: float = 600):
    junit = project / "junit.xml"
    result = run_ccvm("boot", "--junit", str(junit), *args, cwd=project, env=env, timeout=timeout)
    return result, junit


def project_with(tmp_path: Path, launcher_yaml: str, scripts: dict[str, str] | None = None) -> Path:
    """A project with the fixture's matrix and this launcher declaration; SCRIPTS are executable files."""
    project = tmp_path / "project"
    (project / "matrix").mkdir(parents=True)
    for name in MATRIX_FILES:
        shutil.copy(SEED / "matrix" / name, project / "matrix" / name)
    (project / "matrix" / "launcher.yaml").write_text(launcher_yaml)
    for name, text in (scripts or {}).items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    return project


def processes_with(marker: str) -> list[str]:
    """The pids whose command line holds the marker (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(entry.name)
    return found


def test_the_seed_project_passes_both_tcg_cells_through_its_own_wrapper(tmp_path):
    project = tmp_path / "seed"
    shutil.copytree(SEED, project)
    result, junit = ccvm_boot(project)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = junit_cases(junit)
    assert set(cases) == {f"boot.{cell}" for cell in CELLS}
    for cell in CELLS:
        suite = cases[f"boot.{cell}"]
        assert list(suite) == ["overlay", "writable"]
        for name, case in suite.items():
            assert failure_of(case) is None and case.find("skipped") is None, (cell, name)
        out = suite["overlay"].findtext("system-out")
        assert "ARG4:6e65770a6c696e65" in out and "FSTYPE:overlay" in out  # "new\nline", verbatim
        assert "FSTYPE:9p" in suite["writable"].findtext("system-out")
        assert (project / "reports" / "boot" / cell / "attempt-1" / "overlay" / "output.log").is_file()
    assert "ccvm-boot-placeholder" not in result.stdout  # the private HOME's secret never shows in the table


FAKE_SCENARIO = """\
name: fake
argv: [bin/fake]
env: {FAKE_ARCH: "{arch}"}
share:
  overlay: {default: true}
  writable: {flag: --writable-cwd}
boot:
  timeout: %(timeout)s
  scenarios:
    - name: prints
      share: overlay
      args: [hello]
      prepare: {probe.txt: from-host}
      expect: ['^ARCH:x86_64$', '^ARG:hello$', '^NEVER:printed$', '^ALSO:missing$']
      exit_status: 0
"""

PRINTS = """\
#!/bin/sh
echo "ARCH:$FAKE_ARCH"
echo "ARG:$1"
echo "HOME-IS-PRIVATE:$(test "$HOME" != "$REAL_HOME" && echo yes)"
"""


def test_an_expected_line_that_never_appears_fails_naming_the_regex(tmp_path):
    project = project_with(tmp_path, FAKE_SCENARIO % {"timeout": 60}, {"bin/fake": PRINTS})
    env = {**os.environ, "REAL_HOME": os.environ.get("HOME", "")}
    result, junit = ccvm_boot(project, "--cell", "x86_64-tcg-q35", env=env, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    case = junit_cases(junit)["boot.x86_64-tcg-q35"]["prints"]
    failure = failure_of(case)
    assert failure is not None
    assert failure.get("message") == "no output line matches '^NEVER:printed$'"
    assert "'^ALSO:missing$'" in failure.text and "ARG:hello" in failure.text  # the rest, and the output's tail
    assert "HOME-IS-PRIVATE:yes" in case.findtext("system-out")


HANGS = """\
#!/bin/sh
echo "started"
sh -c 'sleep 1000; : %(marker)s' &
sleep 1000
"""


def test_a_launcher_that_hangs_is_killed_at_the_timeout_with_nothing_left(tmp_path):
    marker = f"ccvm-hang-{secrets.token_hex(6)}"
    # 10 s: its first line is printed long before, on a loaded host too.
    project = project_with(tmp_path, FAKE_SCENARIO % {"timeout": 10}, {"bin/fake": HANGS % {"marker": marker}})
    started = time.monotonic()
    result, junit = ccvm_boot(project, "--cell", "x86_64-tcg-q35", timeout=900)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    failure = failure_of(junit_cases(junit)["boot.x86_64-tcg-q35"]["prints"])
    assert failure is not None and failure.get("message").startswith("timed out after 10s"), failure.get("message")
    assert "started" in failure.text
    assert took < 500, f"the run took {took:.0f}s"  # not the launcher's sleep 1000: halfway to it
    assert processes_with(marker) == [], "a process the launcher started outlived the run"


def test_an_interrupted_run_leaves_no_launcher_process(tmp_path):
    marker = f"ccvm-hang-{secrets.token_hex(6)}"
    project = project_with(tmp_path, FAKE_SCENARIO % {"timeout": 300}, {"bin/fake": HANGS % {"marker": marker}})
    proc = subprocess.Popen(
        ccvm_argv("boot", "--cell", "x86_64-tcg-q35", "--junit", str(project / "junit.xml")),
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300  # it starts in seconds; this only bounds a wait for one that never does
        while not processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_with(marker), "the launcher never started"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert processes_with(marker) == [], "a process the launcher started outlived the interrupted run"


PANICS = """\
#!/bin/sh
echo "booting"
echo "[    0.5] Kernel panic - not syncing: VFS: Unable to mount root fs"
sh -c 'sleep 1000; : %(marker)s'
"""


def test_a_kernel_panic_line_ends_the_boot_early(tmp_path):
    marker = f"ccvm-panic-{secrets.token_hex(6)}"
    project = project_with(tmp_path, FAKE_SCENARIO % {"timeout": 300}, {"bin/fake": PANICS % {"marker": marker}})
    started = time.monotonic()
    result, junit = ccvm_boot(project, "--cell", "x86_64-tcg-q35", timeout=600)
    assert result.returncode == 1
    failure = failure_of(junit_cases(junit)["boot.x86_64-tcg-q35"]["prints"])
    assert failure.get("message") == "kernel console: Kernel panic - not syncing: VFS: Unable to mount root fs"
    assert time.monotonic() - started < 150  # not the boot's 300 s timeout: halfway to it
    assert processes_with(marker) == []


@pytest.mark.parametrize("mode", ["missing", "not-executable"])
def test_a_missing_or_non_executable_launcher_is_one_error_line(tmp_path, mode):
    scripts = {} if mode == "missing" else {"bin/fake": PRINTS}
    project = project_with(tmp_path, FAKE_SCENARIO % {"timeout": 60}, scripts)
    if mode == "not-executable":
        (project / "bin" / "fake").chmod(0o644)
    result, _ = ccvm_boot(project, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "matrix/launcher.yaml:2:" in lines[0] and "bin/fake: not an executable file" in lines[0]


BUILT_BY_COMMAND = (FAKE_SCENARIO % {"timeout": 60}).replace(
    "argv: [bin/fake]",
    "argv: [out/fake]\nbuild:\n"
    "  x86_64-linux: {command: [sh, tools/make.sh]}\n"
    "  aarch64-linux: {command: [sh, tools/fail.sh]}",
)
MAKE = "mkdir -p out && cp tools/fake.in out/fake && chmod +x out/fake\n"
FAIL = "echo 'compiling the launcher'\necho 'error: no aarch64 toolchain here' >&2\nexit 3\n"


def test_a_build_command_per_system_builds_the_launcher_or_fails_its_cells(tmp_path):
    scripts = {"tools/make.sh": MAKE, "tools/fail.sh": FAIL, "tools/fake.in": PRINTS.replace("$FAKE_ARCH", "x86_64")}
    project = project_with(tmp_path, BUILT_BY_COMMAND, scripts)
    result, junit = ccvm_boot(project, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    cases = junit_cases(junit)
    built = failure_of(cases["boot.x86_64-tcg-q35"]["prints"])  # built and booted: only the regexes fail
    assert built.get("message") == "no output line matches '^NEVER:printed$'"
    broken = failure_of(cases["boot.aarch64-tcg-virt"]["prints"])
    assert broken.get("message") == "build sh tools/fail.sh (aarch64-linux) exited 3: error: no aarch64 toolchain here"
    assert "error: no aarch64 toolchain here" in broken.text and "compiling the launcher" in broken.text
    assert (project / "reports" / "boot" / "build-aarch64-linux.log").is_file()


FLAKE = r"""
{
  outputs = { self }: {
    packages.x86_64-linux.launcher = builtins.derivation {
      system = "x86_64-linux";
      name = "fake-launcher";
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      launcher = "#!/bin/sh\necho ARCH:x86_64\necho ARG:$1\n";
      args = [ "-c" "mkdir -p $out/bin; printf '%s' \"$launcher\" > $out/bin/fake; chmod +x $out/bin/fake" ];
    };
  };
}
"""


def test_a_flake_build_gives_the_launcher_in_its_output(tmp_path, nix_bin):
    declaration = (
        (FAKE_SCENARIO % {"timeout": 60})
        .replace("argv: [bin/fake]", "argv: [./result/bin/fake]\nbuild:\n  x86_64-linux: {flake: '.#launcher'}")
        .replace(", '^NEVER:printed$', '^ALSO:missing$'", "")
    )
    project = project_with(tmp_path, declaration)
    (project / "flake.nix").write_text(FLAKE)
    env = offline_env(CCVM_NIX=nix_bin)
    result, junit = ccvm_boot(project, "--cell", "x86_64-tcg-q35", env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    case = junit_cases(junit)["boot.x86_64-tcg-q35"]["prints"]
    assert "ARG:hello" in case.findtext("system-out")
    suite = ET.parse(junit).getroot().find("testsuite")
    argv = next(p.get("value") for p in suite.iter("property") if p.get("name") == "launcher_argv")
    assert argv.startswith("/nix/store/") and argv.endswith("-fake-launcher/bin/fake")


# A launcher whose helpers leave its session (`setsid`, a daemon), as a virtiofsd or a clipboard helper may.
SETSID_HELPER = (Path(__file__).resolve().parent / "fixtures" / "launchers" / "setsid-helper").read_text()
PASSES = (FAKE_SCENARIO % {"timeout": 120}).replace(", '^NEVER:printed$', '^ALSO:missing$'", "")


def test_nothing_a_declared_launcher_started_outlives_its_boot(tmp_path):
    marker = f"ccvm-helper-{secrets.token_hex(6)}"
    project = project_with(tmp_path, PASSES, {"bin/fake": SETSID_HELPER})
    env = {**os.environ, "HELPER_MARKER": marker}
    result, junit = ccvm_boot(project, "--cell", "x86_64-tcg-q35", env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert processes_with(marker) == [], "a helper that left the launcher's session outlived ccvm boot"
    case = junit_cases(junit)["boot.x86_64-tcg-q35"]["prints"]
    assert failure_of(case) is None
    out = case.findtext("system-out")
    assert "ARG:hello" in out
    note = next(line for line in out.splitlines() if line.startswith("ccvm: the launcher left "))
    assert f"sleep 1000; : {marker}-" in note and note.endswith("; ccvm stopped them")


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_ccvm_boot_mid_run_leaves_no_helper(tmp_path, signum, status):
    marker = f"ccvm-helper-{secrets.token_hex(6)}"
    project = project_with(tmp_path, PASSES, {"bin/fake": SETSID_HELPER})
    env = {**os.environ, "HELPER_MARKER": marker, "HELPER_HANG": "1"}
    proc = subprocess.Popen(
        ccvm_argv("boot", "--cell", "x86_64-tcg-q35", "--junit", str(project / "junit.xml")),
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300  # they start in seconds; this only bounds a wait for ones that never do
        while len(processes_with(f"{marker}-")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        # At least: a helper's sh forks before each command, and the copy holds the marker until it execs.
        assert len(processes_with(f"{marker}-")) >= 2, "the launcher's helpers never started"
        proc.send_signal(signum)  # SIGINT: Ctrl-C
        assert proc.wait(timeout=120) == status
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert processes_with(marker) == [], "a helper outlived ccvm boot stopped by a signal"
