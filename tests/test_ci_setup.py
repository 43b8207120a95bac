""".ci/setup's decisions about Nix, each function taken from the script itself and run
under bash: a Nix that did not come from Debian (cachix/install-nix-action's, the
official installer's) is left alone, Debian's nix-bin is not installed over it; and
which nix-bin to install, or upgrade to, for current nixpkgs (2.18 or newer).

Debian 13's nix-bin cannot be installed on this Debian 12 machine, so the version
decision runs on stand-in inputs: the versions dpkg and apt-cache would report
(apt-cache itself is a stand-in script printing Debian 13's `apt-cache policy`);
the comparisons are the real dpkg's."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


SETUP = ROOT / ".ci" / "setup"


def setup_definitions(*functions: str) -> str:
    """The script's settings (NAME=value lines) and the named functions, as bash to run."""
    text = SETUP.read_text()
    settings = re.findall(r"^[A-Z_]+=.*$", text, re.M)
    bodies = []
    for name in functions:
        function = re.search(rf"^{name}\(\) \{{\n.*?^\}}\n", text, re.S | re.M)
        assert function, f"{name} is defined in .ci/setup"
        bodies.append(function.group(0))
    return "\n".join([*settings, *bodies])


def run_setup_function(call: str, *functions: str, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{setup_definitions(*functions)}\n{call}"],
        env={"PATH": path},
        capture_output=True,
        text=True,
        timeout=30,
    )


def nix_preinstalled(path: str) -> bool:
    return run_setup_function("nix_preinstalled", "nix_preinstalled", path=path).returncode == 0


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


DEBIAN_12 = "2.8.0-1.1+b1"  # bookworm's nix-bin
DEBIAN_13 = "2.26.3+dfsg-1"  # trixie's nix-bin


def need_dpkg() -> None:
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg is not installed: .ci/setup is for Debian and Ubuntu")


@pytest.mark.parametrize(
    ("installed", "candidate", "foreign", "action"),
    [
        ("", DEBIAN_13, "0", "install"),  # a fresh Debian 13: 2.26, new enough for current nixpkgs
        ("", DEBIAN_12, "0", "install"),  # a fresh Debian 12: 2.8, for the offline fixture flakes
        ("", "", "0", "install"),  # package lists not fetched yet: apt-get update comes first
        (DEBIAN_12, DEBIAN_12, "0", "keep"),  # Debian 12: nothing newer to have
        (DEBIAN_12, DEBIAN_13, "0", "upgrade"),  # moved to Debian 13: 2.8 is replaced by 2.26
        (DEBIAN_13, DEBIAN_13, "0", "keep"),
        ("2.18.1+dfsg-1", "2.26.3+dfsg-1", "0", "keep"),  # new enough already: no needless upgrade
        ("", DEBIAN_13, "1", "leave"),  # a Nix not from Debian is on PATH
    ],
)
def test_which_nix_bin_setup_installs(installed, candidate, foreign, action):
    need_dpkg()
    done = run_setup_function(f"nix_bin_action '{installed}' '{candidate}' {foreign}", "nix_bin_action")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == action


def test_the_last_line_says_an_old_nix_is_kept_on_debian_12_and_how_to_get_a_newer_one():
    need_dpkg()
    done = run_setup_function(f"nix_note 'nix (Nix) 2.8.0' 0 '{DEBIAN_12}'", "nix_note")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith("nix 2.8.0 kept: this distribution has no nix-bin 2.18 or newer")
    assert "offline fixture flakes" in line and "Debian 13's nix-bin (2.26)" in line and "upstream installer" in line


@pytest.mark.parametrize(
    ("version", "foreign", "candidate", "says"),
    [
        ("nix (Nix) 2.26.3", "0", DEBIAN_13, ""),  # Debian 13: nothing to say
        ("nix (Nix) 2.18.1", "0", "2.18.1+dfsg-1", ""),  # Ubuntu 24.04's
        ("nix (Nix) 2.31.0", "1", "", ""),  # the installer's
        ("", "0", "", ""),  # no nix at all: the last line says "no nix" itself
        ("nix (Nix) 2.8.0", "0", DEBIAN_13, "apt-get install nix-bin gives 2.26.3+dfsg-1"),
        ("nix (Nix) 2.11.0", "1", DEBIAN_12, "(not Debian's, left alone) is older than the 2.18"),
    ],
)
def test_the_nix_note_only_for_a_nix_older_than_current_nixpkgs_needs(version, foreign, candidate, says):
    need_dpkg()
    done = run_setup_function(f"nix_note '{version}' {foreign} '{candidate}'", "nix_note")
    assert done.returncode == 0, done.stderr
    assert (says in done.stdout) if says else done.stdout == ""


def test_the_candidate_is_read_from_apt_cache_policy(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A stand-in apt-cache printing what Debian 13's does (apt-cache cannot be pointed at trixie here).
    (bin_dir / "apt-cache").write_text(
        "#!/bin/sh\n"
        "printf 'nix-bin:\\n  Installed: (none)\\n  Candidate: 2.26.3+dfsg-1\\n  Version table:\\n'\n"
        "printf '     2.26.3+dfsg-1 500\\n        500 http://deb.debian.org/debian trixie/main amd64 Packages\\n'\n"
    )
    (bin_dir / "apt-cache").chmod(0o755)
    done = run_setup_function("nix_bin_candidate", "nix_bin_candidate", path=f"{bin_dir}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2.26.3+dfsg-1"
    (bin_dir / "apt-cache").write_text("#!/bin/sh\nprintf 'nix-bin:\\n  Installed: (none)\\n  Candidate: (none)\\n'\n")
    assert run_setup_function("nix_bin_candidate", "nix_bin_candidate", path=f"{bin_dir}:/usr/bin:/bin").stdout == ""


def test_the_installed_version_is_dpkgs():
    need_dpkg()
    done = run_setup_function("nix_bin_installed", "nix_bin_installed")
    assert done.returncode == 0, done.stderr
    owned = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "nix-bin"], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == (owned.stdout.strip() if owned.returncode == 0 else "")
