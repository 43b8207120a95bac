""".ci/setup's test for a Nix that did not come from Debian (cachix/install-nix-action's,
the official installer's): that Nix is left alone, Debian's nix-bin is not installed
over it.  The function is taken from the script itself and run under bash."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def nix_preinstalled(path: str) -> bool:
    text = (ROOT / ".ci" / "setup").read_text()
    function = re.search(r"^nix_preinstalled\(\) \{\n.*?^\}\n", text, re.S | re.M)
    assert function, "nix_preinstalled is defined in .ci/setup"
    result = subprocess.run(
        ["bash", "-c", f"{function.group(0)}\nnix_preinstalled"],
        env={"PATH": path},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.returncode == 0


def debian_nix() -> Path:
    owned = subprocess.run(["dpkg-query", "-S", "/usr/bin/nix"], capture_output=True, text=True, timeout=30)
    if shutil.which("dpkg-query") is None or owned.returncode != 0:
        pytest.skip("Debian's nix-bin is not installed here (.ci/setup installs it)")
    return Path("/usr/bin/nix")


def fake_nix(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "nix-profile" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "nix").write_text("#!/bin/sh\necho 'nix (Nix) 2.31.0'\n")
    (bin_dir / "nix").chmod(0o755)
    return bin_dir


def test_debians_nix_is_not_preinstalled():
    debian_nix()
    assert not nix_preinstalled("/usr/bin:/bin")


def test_debians_nix_through_the_merged_bin_link_is_still_debians():
    debian_nix()
    if not Path("/bin").is_symlink():
        pytest.skip("/bin is not a link to /usr/bin here")
    assert not nix_preinstalled("/bin:/usr/bin")


def test_a_nix_from_elsewhere_first_on_path_is_left_alone(tmp_path):
    debian_nix()
    assert nix_preinstalled(f"{fake_nix(tmp_path)}:/usr/bin:/bin")


def test_no_nix_at_all_is_not_preinstalled(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    bash_dir = Path(shutil.which("bash")).parent
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("dirname", "basename", "dpkg-query"):
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    (tools / "bash").symlink_to(bash_dir / "bash")
    assert not nix_preinstalled(str(tools))
