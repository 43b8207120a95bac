"""A launcher's whole process tree dies with its run, and a dry run never boots.

Real processes throughout: a real QEMU (``-machine none``: it runs until it is
stopped, with no guest) started by absolute path from a store-like directory,
``setsid`` helpers and daemons, ccvm itself signalled mid-run.  The one stand-in
is ``nix``: a fake first on PATH (tests/fixtures/launchers/fake-nix) plays a
long build, since a real one would need a store, a flake and time.  What is
left is read from /proc; every wait is for an event, with a deadline.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import ccvm_argv, run_ccvm

from ccvm import processes
from ccvm.launcher.dryrun import DryRunGuard, IgnoredHook, NotRunAgain
from ccvm.launcher.resolve import given_wrapper
from ccvm.processes import Supervision, booting

LAUNCHERS = Path(__file__).resolve().parent / "fixtures" / "launchers"
FAKE_NIX = LAUNCHERS / "fake-nix"


def pids_with(marker: str) -> list[int]:
    """The live processes whose command line holds the marker."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def wait_until(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def zombie_children() -> list[int]:
    """This process's children that exited and were never reaped."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == os.getpid():
                found.append(int(entry))
    return found


def store_qemu(tmp_path: Path, qemu: str) -> Path:
    """QEMU under a /nix/store-like path, as a Nix-built wrapper calls it."""
    path = tmp_path / "nix" / "store" / "0abc1def-qemu-9.1.0" / "bin" / "qemu-system-x86_64"
    path.parent.mkdir(parents=True)
    path.symlink_to(qemu)
    return path


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["/nix/store/0abc-qemu-9.1.0/bin/qemu-system-x86_64", "-machine", "none"], "QEMU"),
        (["/nix/store/0abc-qemu/bin/.qemu-system-aarch64-wrapped", "-M", "virt"], "QEMU"),
        (["qemu-kvm", "-m", "1G"], "QEMU"),
        (["/bin/sh", "/nix/store/0abc-qemu/bin/qemu-system-x86_64", "-nographic"], "QEMU"),
        (["env", "A=1", "qemu-system-riscv64", "-kernel", "k"], "QEMU"),
        (["qemu-system-x86_64", "--version"], ""),
        (["qemu-system-x86_64", "-machine", "help"], ""),
        (["nix", "build", ".#vm"], "a Nix build"),
        (["nix", "--extra-experimental-features", "nix-command flakes", "build", ".#vm"], "a Nix build"),
        (["/bin/sh", "-e", "/tmp/fake/nix", "run", ".#vm"], "a Nix build"),
        (["nix", "flake", "check"], "a Nix build"),
        (["nix", "flake", "check", "--no-build"], ""),
        (["nix", "build", ".#vm", "--dry-run"], ""),
        (["nix", "eval", ".#packages.x86_64-linux.build"], ""),
        (["nix", "--version"], ""),
        (["nix-build", "-A", "vm"], "a Nix build"),
        (["nix-store", "--realise", "/nix/store/0abc.drv"], "a Nix build"),
        (["nix-store", "-qR", "/nix/store/0abc"], ""),
        (["bash", "-c", "qemu-system-x86_64 -machine none"], ""),  # the QEMU it runs shows by itself
        (["ssh-keygen", "-t", "ed25519"], ""),
    ],
)
def test_booting_names_qemu_by_any_path_and_nix_builds(argv, what):
    assert booting(argv) == what


def test_booting_sees_qemu_behind_a_renamed_argv():
    assert booting(["vm-runner", "-machine", "none"], "/usr/bin/qemu-system-x86_64") == "QEMU"


def test_what_left_the_session_is_stopped_and_named_when_the_launcher_exits(tmp_path):
    marker = f"ccvm-tree-{secrets.token_hex(6)}"
    # Each helper marks itself up once it runs as itself (not yet exec'd, it would be named "setsid"),
    # and the launcher exits only then, however long a loaded host takes (the run's 60 s timeout stops a
    # hang): the names checked are the helpers' own.
    up = tmp_path
    script = (
        f"setsid sh -c ': >{up}/setsid; sleep 1000; : {marker}-setsid' </dev/null >/dev/null 2>&1 & "
        f"( (sh -c ': >{up}/daemon; sleep 1000; : {marker}-daemon' </dev/null >/dev/null 2>&1 &) & ) ; "
        f"until [ -e {up}/setsid ] && [ -e {up}/daemon ]; do sleep 0.05; done; "
        "echo started"
    )
    done = processes.run(["bash", "-c", script], timeout_s=60, supervise=Supervision())
    assert done.returncode == 0 and done.stdout == "started\n", done
    assert pids_with(marker) == [], "a helper outlived its launcher"
    named = " ".join(done.tree.leftovers)
    assert f"{marker}-setsid" in named and f"{marker}-daemon" in named
    assert zombie_children() == []


def test_a_timeout_stops_a_setsid_child_that_ignores_sigterm():
    marker = f"ccvm-tree-{secrets.token_hex(6)}"
    script = f"setsid bash -c \"trap '' TERM; sleep 1000; : {marker}\" & sleep 1000"
    started = time.monotonic()
    done = processes.run(["bash", "-c", script], timeout_s=1, supervise=Supervision())
    assert done.returncode is None and "timed out" in done.stderr
    assert pids_with(marker) == []
    # A stop that waited for the child ignoring SIGTERM would wait for its sleep 1000; the stop itself takes
    # TERM_GRACE_S and a SIGKILL: far beyond both, far short of that.
    assert time.monotonic() - started < 120


def test_the_launcher_leads_a_session_of_its_own_under_its_supervisor():
    proc = processes.spawn(["sh", "-c", "exec cat /proc/self/stat"], stdout=subprocess.PIPE, supervise=Supervision())
    try:
        fields = proc.stdout.read().decode().rsplit(")", 1)[1].split()
        assert proc.wait(timeout=30) == 0
    finally:
        processes.stop(proc)
        processes.forget(proc)
        proc.stdout.close()
    assert int(fields[3]) == proc.launcher_pid != proc.pid  # its session: its own pid; not the supervisor's
    assert int(fields[1]) == proc.pid  # its parent: the supervisor
    assert proc.end() == processes.TreeEnd()


def test_the_launchers_exit_status_and_signal_come_through():
    assert processes.run(["sh", "-c", "exit 7"], timeout_s=30, supervise=Supervision()).returncode == 7
    assert processes.run(["sh", "-c", "kill -9 $$"], timeout_s=30, supervise=Supervision()).returncode == -9
    with pytest.raises(FileNotFoundError):
        processes.run(["/nonexistent/launcher"], timeout_s=30, supervise=Supervision())


def test_a_real_qemu_by_absolute_path_is_stopped_long_before_the_timeout_and_named(tmp_path, qemu_system_x86_64_bin):
    marker = f"ccvm-tree-{secrets.token_hex(6)}"
    qemu = store_qemu(tmp_path, qemu_system_x86_64_bin)
    launcher = given_wrapper(str(LAUNCHERS / "hookless-qemu"))
    guard = DryRunGuard()
    env = {**os.environ, "HOOKLESS_QEMU": str(qemu), "HOOKLESS_MARKER": marker, "CCVM_DRYRUN": "1"}
    started = time.monotonic()
    with pytest.raises(IgnoredHook) as caught:
        guard.run(
            [str(LAUNCHERS / "hookless-qemu")],
            launcher=launcher,
            program=(str(LAUNCHERS / "hookless-qemu"),),
            timeout_s=120,
            cwd=str(tmp_path),
            env=env,
        )
    took = time.monotonic() - started
    # Seen at the first look at the tree (WATCH_POLL_S), stopped at once: a guard that missed QEMU would let it
    # run to the 120 s timeout; the bound lies halfway, far beyond a loaded host's start of QEMU.
    assert took < 60, f"QEMU ran {took:.1f}s"
    assert pids_with(marker) == []
    message = str(caught.value)
    assert message.startswith("the launcher ignored its dry-run hook (CCVM_DRYRUN=1): it started QEMU")
    assert f"{qemu} -machine none" in message and "\n" not in message
    with pytest.raises(NotRunAgain, match="not run: the launcher ignored its dry-run hook"):
        guard.run(["true"], launcher=launcher, program=("true",), timeout_s=30, cwd=str(tmp_path), env=env)


def test_a_nix_build_is_stopped_and_named(tmp_path):
    marker = f"ccvm-tree-{secrets.token_hex(6)}"
    sleep = f"{300 + secrets.randbelow(10**6) / 10**6:.6f}"  # the fake build's child, found by its argv
    env = {
        **os.environ,
        "PATH": f"{FAKE_NIX}:{os.environ['PATH']}",  # the stand-in for nix (see the module's docstring)
        "FAKE_NIX_SLEEP": sleep,
        "HOOKLESS_MARKER": marker,
        "TMPDIR": str(tmp_path),
    }
    started = time.monotonic()
    done = processes.run(
        [str(LAUNCHERS / "hookless-nix")],
        timeout_s=120,
        cwd=str(tmp_path),
        env=env,
        supervise=Supervision(forbid_boots=True),
    )
    assert time.monotonic() - started < 60  # not the 120 s timeout (nor the fake build's 300 s): halfway to it
    assert done.tree.booted is not None and done.tree.booted.what == "a Nix build"
    assert f"nix build '.#vm' --out-link {tmp_path}/vm-{marker}" in done.tree.booted.command
    assert pids_with(marker) == [] and pids_with(f"sleep {sleep}") == []


def test_an_unwatched_run_may_boot_and_nothing_else_of_ours_is_touched(tmp_path):
    """Without forbid_boots (a boot) QEMU is no reason to stop; a process of the caller's
    own, outside the tree, lives on through both kinds of run."""
    marker = f"ccvm-tree-{secrets.token_hex(6)}"
    bystander = subprocess.Popen(["sh", "-c", f"sleep 1000; : {marker}-bystander"])
    env = {**os.environ, "FAKE_NIX_SLEEP": "0.2"}  # the stand-in for nix (see the module's docstring)
    try:
        done = processes.run(
            ["sh", "-c", f"{FAKE_NIX / 'nix'} build .#x; echo ran"], timeout_s=30, env=env, supervise=Supervision()
        )
        assert done.stdout == "ran\n" and done.tree.booted is None, done
        watched = processes.run(
            [str(FAKE_NIX / "nix"), "build", ".#x"], timeout_s=30, supervise=Supervision(forbid_boots=True)
        )
        assert watched.tree.booted is not None and watched.tree.booted.what == "a Nix build"
        assert bystander.poll() is None and pids_with(f"{marker}-bystander") == [bystander.pid]
    finally:
        bystander.kill()
        bystander.wait(timeout=10)


def test_the_tree_is_stopped_when_ccvm_itself_is_killed_outright(tmp_path):
    """SIGKILL leaves ccvm no say: the supervisor sees its parent go (PR_SET_PDEATHSIG) and stops the tree."""
    marker = f"ccvm-tree-{secrets.token_hex(6)}"
    code = (
        "import sys; from ccvm import processes; "
        f"processes.run([{str(LAUNCHERS / 'setsid-helper')!r}], timeout_s=600, supervise=processes.Supervision())"
    )
    env = {**os.environ, "HELPER_MARKER": marker, "HELPER_HANG": "1"}
    runner = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=str(tmp_path))
    try:
        assert wait_until(lambda: len(pids_with(f"{marker}-")) == 2, 60), "the helpers never started"
        runner.kill()
        runner.wait(timeout=10)
        # The supervisor stops the tree (TERM, grace, KILL) in seconds; 60 s only bounds a wait for one that does not
        assert wait_until(lambda: pids_with(marker) == [], 60), "the launcher's helpers outlived a killed ccvm"
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=10)


# -- through ccvm host ----------------------------------------------------------------


def ccvm_host(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, dict]:
    junit = tmp_path / "host.xml"
    base = {k: v for k, v in os.environ.items() if not k.startswith("CCVM_")}
    result = run_ccvm("host", "--junit", str(junit), *args, cwd=tmp_path, env={**base, **env}, timeout=300)
    cases = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            cases[f"{case.get('classname')}/{case.get('name')}"] = case
    return result, cases


def verdict(case: ET.Element) -> tuple[str, str]:
    for kind in ("failure", "skipped"):
        node = case.find(kind)
        if node is not None:
            return ("fail" if kind == "failure" else "skip"), node.get("message", "")
    return "pass", ""


def test_ccvm_host_stops_a_hookless_qemu_launcher_at_once_and_runs_it_no_more(tmp_path, qemu_system_x86_64_bin):
    marker = f"ccvm-tree-{secrets.token_hex(6)}"
    qemu = store_qemu(tmp_path, qemu_system_x86_64_bin)
    env = {"HOOKLESS_QEMU": str(qemu), "HOOKLESS_MARKER": marker}
    started = time.monotonic()
    result, cases = ccvm_host(
        tmp_path, "--wrapper", str(LAUNCHERS / "hookless-qemu"), "--script", str(LAUNCHERS / "runs-ccvm.sh"), env=env
    )
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert pids_with(marker) == [], "a QEMU outlived ccvm host"
    preflight = cases["host.dry-run/prints-a-report"]
    outcome, message = verdict(preflight)
    assert outcome == "fail" and "the launcher ignored its dry-run hook (CCVM_DRYRUN=1)" in message, message
    assert f"it started QEMU, stopped at once: {qemu} -machine none" in message
    assert float(preflight.get("time")) < 60  # not the dry run's 120 s timeout: halfway to it
    script = cases["host.script.runs-ccvm.sh/dry-run-hook"]  # it ran with the preflight, or after it
    assert verdict(script)[0] in ("fail", "skip") and "ignored its dry-run hook" in verdict(script)[1]
    others = [name for name in cases if not name.startswith(("host.dry-run/", "host.script."))]
    assert others and all(verdict(cases[name]) == ("skip", verdict(cases[others[0]])[1]) for name in others)
    assert verdict(cases[others[0]])[1].startswith("not run: the launcher ignored its dry-run hook (CCVM_DRYRUN=1)")
    # A launcher run again by the script, held to the dry run's 120 s timeout, would take longer than this.
    assert took < 90, f"ccvm host took {took:.0f}s"


def test_ccvm_host_stops_a_launcher_that_runs_nix_build(tmp_path):
    marker = f"ccvm-tree-{secrets.token_hex(6)}"
    env = {"PATH": f"{FAKE_NIX}:{os.environ['PATH']}", "HOOKLESS_MARKER": marker}  # the stand-in for nix
    result, cases = ccvm_host(tmp_path, "--wrapper", str(LAUNCHERS / "hookless-nix"), "--script", "none", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    outcome, message = verdict(cases["host.dry-run/prints-a-report"])
    assert outcome == "fail" and "ignored its dry-run hook (CCVM_DRYRUN=1): it started a Nix build" in message
    assert "nix build '.#vm'" in message
    assert pids_with(marker) == []


def test_ccvm_host_leaves_no_helper_of_the_launcher_running(tmp_path):
    """A dry run whose helpers leave its session: they are stopped, and the dry run fails naming them."""
    marker = f"ccvm-tree-{secrets.token_hex(6)}"
    env = {"HELPER_MARKER": marker}
    result, cases = ccvm_host(
        tmp_path, "--wrapper", str(LAUNCHERS / "setsid-helper"), "--script", str(LAUNCHERS / "runs-ccvm.sh"), env=env
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert pids_with(marker) == [], "a helper outlived ccvm host"
    outcome, message = verdict(cases["host.dry-run/prints-a-report"])
    assert outcome == "fail" and "the dry run left " in message and marker in message, message
    assert f"sleep 1000; : {marker}-" in message and "ccvm stopped them" in message
    # The script's own tree: the helpers the launcher left are stopped when the script ends; its line passes.
    script = [verdict(case)[0] for name, case in cases.items() if name.startswith("host.script.runs-ccvm.sh/")]
    assert script == ["pass"], script


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_ccvm_host_mid_run_leaves_nothing(tmp_path, signum, status):
    marker = f"ccvm-tree-{secrets.token_hex(6)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCVM_")}
    env.update(HELPER_MARKER=marker, HELPER_HANG="1")
    argv = ccvm_argv("host", "--wrapper", str(LAUNCHERS / "setsid-helper"), "--script", "none")
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: len(pids_with(f"{marker}-")) >= 2, 60), "the launcher's helpers never started"
        proc.send_signal(signum)  # SIGINT: Ctrl-C
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == status, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert pids_with(marker) == [], "a helper outlived ccvm host stopped by a signal"


CLEAN_LAUNCHER = """#!/bin/sh
# A launcher whose dry run stages its argv in a scratch directory, prints it and starts nothing.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/clean.XXXXXX")
printf '%s\\0' "$@" >"$scratch/argv"
echo "$scratch"
"""
BOOTS_ITSELF = """#!/bin/sh
# A boot test wired as a host test: it builds the VM itself, whatever $CCVM does.
"$CCVM" probe >/dev/null && echo "ok 1 - the dry run works"
nix build .#vm && echo "ok 2 - the VM is built"
"""


def test_a_host_script_that_builds_by_itself_is_named_and_the_launcher_is_not_blamed(tmp_path):
    (tmp_path / "launcher").write_text(CLEAN_LAUNCHER)
    (tmp_path / "launcher").chmod(0o755)
    (tmp_path / "boots-itself.sh").write_text(BOOTS_ITSELF)
    sleep = f"{300 + secrets.randbelow(10**6) / 10**6:.6f}"  # the fake build's child, found by its argv
    env = {"PATH": f"{FAKE_NIX}:{os.environ['PATH']}", "FAKE_NIX_SLEEP": sleep}  # the stand-in for nix
    result, cases = ccvm_host(
        tmp_path, "--wrapper", str(tmp_path / "launcher"), "--script", str(tmp_path / "boots-itself.sh"), env=env
    )
    assert "Traceback" not in result.stderr
    assert verdict(cases["host.dry-run/prints-a-report"])[0] == "pass"
    script = {name: verdict(case) for name, case in cases.items() if name.startswith("host.script.")}
    assert script["host.script.boots-itself.sh/the dry run works"] == ("pass", ""), script
    outcome, message = verdict(cases["host.script.boots-itself.sh/dry-run-hook"])
    assert outcome == "fail" and message.startswith("boots-itself.sh started a Nix build during the dry run"), message
    assert "the script boots a VM itself" in message
    assert not any(verdict(case)[1].startswith("not run:") for case in cases.values())
    assert pids_with(f"sleep {sleep}") == []
