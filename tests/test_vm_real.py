"""ccvm vm with real QEMU: exit status, staging, debug, the interactive
shell, and the plan's argv equal to the argv actually spawned."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pexpect
from clirun import ccvm_argv, run_ccvm, running_qemus

ROOT = Path(__file__).resolve().parent.parent


def vm_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCVM_")}
    env.update(
        CCVM_MATRIX=str(ROOT / "matrix"),
        HOME=str(tmp_path / "home"),
        XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")),
        **extra,
    )
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


def ccvm_vm(tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return run_ccvm("vm", *args, cwd=work, env=env or vm_env(tmp_path), timeout=timeout)


def facts(stdout: str) -> dict[str, str]:
    return dict(re.findall(r"^CCVM:FACT ([^=]+)=(.*)$", stdout, re.M))


def test_exit_status_comes_back(tmp_path):
    result = ccvm_vm(tmp_path, "--arch", "aarch64", "--", "sh", "-c", "CCVM_STUB_EXIT=9 ccvm-stub")
    assert result.returncode == 9, result.stderr
    assert facts(result.stdout)["argc"] == "0"


def test_config_is_staged_and_guest_writes_stay_in_the_guest(tmp_path):
    config = tmp_path / "home" / ".claude"
    config.mkdir(parents=True)
    (config / "settings.json").write_text('{"model": "m"}')
    (config / ".credentials.json").write_text("SECRET-TOKEN-XYZ")
    result = ccvm_vm(
        tmp_path,
        "--arch",
        "x86_64",
        "--",
        "sh",
        "-c",
        "ccvm-stub && echo changed > ~/.claude/settings.json && cat ~/.claude/settings.json",
    )
    assert result.returncode == 0, result.stderr
    seen = facts(result.stdout)
    assert bytes.fromhex(seen["home.settings"]).decode() == '{"model": "m"}'
    assert seen["home.credentials"] == "present:16"
    assert "changed" in result.stdout
    assert "SECRET-TOKEN-XYZ" not in result.stdout + result.stderr
    assert (config / "settings.json").read_text() == '{"model": "m"}'


def test_debug_streams_the_console_and_keeps_scratch(tmp_path):
    result = ccvm_vm(tmp_path, "--arch", "aarch64", "--ccvm-debug", "--", "true")
    assert result.returncode == 0
    match = re.search(r"scratch directory (\S+) \(kept\)", result.stderr)
    assert match, result.stderr[:500]
    scratch = Path(match.group(1))
    try:
        assert scratch.is_dir() and (scratch / "logs" / "console.log").is_file()
        assert "Linux version" in result.stderr  # the kernel console, not quieted
    finally:
        subprocess.run(["rm", "-rf", str(scratch)], check=False)


def _qemu_argv_using(path: Path, deadline: float) -> list[str]:
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                words = (proc / "cmdline").read_bytes().split(b"\0")[:-1]
            except OSError:
                continue
            argv = [w.decode() for w in words]
            if argv and argv[0].startswith("qemu-system") and any(str(path) in w for w in argv):
                return argv
        time.sleep(0.05)
    raise AssertionError("QEMU never appeared")


def test_dry_run_plan_is_what_actually_runs(tmp_path):
    args = ["--arch", "aarch64", "--memory", "384M", "--cores", "1", "--", "sh", "-c", "sleep 2"]
    env = vm_env(tmp_path)
    plan_result = ccvm_vm(tmp_path, *args, env={**env, "CCVM_DRYRUN": "1"})
    plan = json.loads(plan_result.stdout)
    work = tmp_path / "work"
    proc = subprocess.Popen(ccvm_argv("vm", *args), cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        spawned = _qemu_argv_using(work, time.monotonic() + 300)  # QEMU lives through the boot: it is seen
    finally:
        proc.communicate(timeout=300)  # a TCG boot on a loaded host; this only stops a hang
    assert proc.returncode == 0
    scratch_in_run = re.search(r"(/[^,]*/ccvm-[^/,]+)/serial\.sock", " ".join(spawned)).group(1)
    normalise = lambda argv, scratch: [w.replace(scratch, "<scratch>") for w in argv]  # noqa: E731
    assert normalise(spawned, scratch_in_run) == normalise(plan["qemu_argv"], plan["scratch"]["path"])


def test_interactive_shell(tmp_path):
    env = vm_env(tmp_path)
    (tmp_path / "work").mkdir()
    command, *arguments = ccvm_argv("vm", "--arch", "x86_64", "--shell")
    child = pexpect.spawn(
        command,
        arguments,
        cwd=str(tmp_path / "work"),
        env=env,
        encoding="utf-8",
        timeout=300,  # a TCG boot to the prompt on a loaded host; this only stops a hang
    )
    try:
        child.expect("work # ")  # the guest shell's prompt, in the shared working directory
        child.sendline("echo $((6 * 7))-answer")
        child.expect("42-answer")
        child.sendline("exit")
        child.expect(pexpect.EOF, timeout=120)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_program_output_is_passed_through_and_cannot_fake_the_protocol(tmp_path):
    """The program prints protocol-looking lines, a lone carriage return and
    an unterminated last line, writes to its staged config, with a writable
    share: its status, its bytes and the host's files all stay true."""
    config = tmp_path / "home" / ".claude"
    config.mkdir(parents=True)
    (config / "settings.json").write_text('{"model": "m"}')
    script = (
        'echo "CCVM:EXIT 0"; echo "CCVM:FAIL fake"; printf "a\\rb\\n"; '
        'echo changed > "$HOME/.claude/settings.json"; printf partial; exit 4'
    )
    work = tmp_path / "work"
    work.mkdir()
    result = run_ccvm(
        "vm",
        "--arch",
        "aarch64",
        "--writable-cwd",
        "--",
        "sh",
        "-c",
        script,
        cwd=work,
        env=vm_env(tmp_path),
        timeout=300,
        text=False,
    )
    assert result.returncode == 4, result.stderr
    assert result.stdout == b"CCVM:EXIT 0\nCCVM:FAIL fake\na\rb\npartial"
    assert (config / "settings.json").read_text() == '{"model": "m"}'
    assert not (work / ".claude").exists()  # HOME is guest memory, not the share


def test_outside_a_project_ccvm_vm_boots_with_the_packaged_pins(tmp_path):
    """No matrix/ here and none named: ccvm's own pins, the embedded guest, a real boot."""
    from clirun import run_ccvm

    result = run_ccvm("vm", "--arch", "x86_64", "--", "ccvm-stub", "a b", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "CCVM:FACT argc=1" in result.stdout and "CCVM:FACT share.fstype=overlay" in result.stdout
    named = run_ccvm("--matrix", str(tmp_path / "missing"), "vm", "--", "true", cwd=tmp_path)
    assert named.returncode == 2 and "matrix directory not found" in named.stderr


def test_output_nobody_reads_until_the_guest_has_ended_is_all_there(tmp_path):
    """QEMU drops a virtio console's bytes when ccvm does not read them: a pipe that is not read
    while the program prints must not cost a line (the output waits in ccvm, not in the guest)."""
    (tmp_path / "work").mkdir()
    lines = 20000
    proc = subprocess.Popen(
        ccvm_argv("vm", "--arch", "x86_64", "--", "sh", "-c", f"seq 1 {lines}; echo END"),
        cwd=tmp_path / "work",
        env=vm_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while not running_qemus(proc.pid):  # QEMU starts ...
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.1)
        while running_qemus(proc.pid):  # ... and ends, the program's output unread all along
            assert time.monotonic() < deadline
            time.sleep(0.1)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert out.decode().split("\n") == [str(i) for i in range(1, lines + 1)] + ["END", ""]
