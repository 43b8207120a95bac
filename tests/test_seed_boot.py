"""One real boot per declared scenario of the seed-style fixture wrapper
(tests/fixtures/seed-project/bin/ccvm): QEMU with ccvm's embedded kernel
and initramfs, x86_64 tcg q35, the stub's KEY:value lines checked against
the declaration's regular expressions, its host files and exit status.

This drives the wrapper directly from the parsed declaration; `ccvm boot`
through a declared launcher (the runner's console, retry and JUnit
machinery) is wired separately."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ccvm.guest.assets import AssetStore
from ccvm.matrix.axes import Arch
from ccvm.matrix.launcher import load_launcher
from ccvm.matrix.model import load_matrix

ROOT = Path(__file__).resolve().parent.parent
SEED = Path(__file__).resolve().parent / "fixtures" / "seed-project"
LAUNCHER = load_launcher(SEED / "matrix")


@pytest.fixture(scope="module")
def guest_env() -> dict[str, str]:
    assets = AssetStore(load_matrix(ROOT / "matrix").guest).for_arch(Arch.X86_64)
    return {"CCVM_KERNEL_X86_64": str(assets.kernel), "CCVM_INITRD_X86_64": str(assets.initrd)}


@pytest.mark.boot
@pytest.mark.parametrize("scenario", LAUNCHER.boot.scenarios, ids=lambda s: s.name)
def test_the_fixture_wrapper_boots_the_stub(tmp_path, guest_env, scenario):
    share, home = tmp_path / "share", tmp_path / "home"
    share.mkdir()
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text('{"model": "stub"}\n')
    (home / ".claude" / ".credentials.json").write_text('{"token": "boot-test-token"}\n')
    for name, content in scenario.prepare.items():
        (share / name).write_text(content)
    switch = LAUNCHER.share_switch(scenario.share)
    args = [switch.flag] if switch.flag else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCVM_")}
    env.update(HOME=str(home), **guest_env, **LAUNCHER.cell_env(arch="x86_64", accel="tcg", machine="q35"))
    env["ANTHROPIC_API_KEY"] = "boot-test-key"  # the wrapper hands it to QEMU through a pipe
    env.update(scenario.env)
    result = subprocess.run(
        [str(SEED / LAUNCHER.argv[0]), *args, *scenario.args],
        cwd=share,
        env=env,
        capture_output=True,
        text=True,
        timeout=LAUNCHER.boot.timeout_s,
    )
    lines = result.stdout.splitlines()
    missing = [p.pattern for p in scenario.expect if not any(p.search(line) for line in lines)]
    assert missing == [], f"the stub did not print {missing}:\n{result.stdout}\n{result.stderr}"
    assert result.returncode == scenario.exit_status, result.stderr
    for name in scenario.must_exist:
        assert (share / name).exists(), f"{name} should exist on the host after {scenario.name}"
    for name in scenario.must_not_exist:
        assert not (share / name).exists(), f"{name} should not reach the host in {scenario.name}"
    assert "boot-test-token" not in result.stdout + result.stderr
    assert "boot-test-key" not in result.stdout + result.stderr
