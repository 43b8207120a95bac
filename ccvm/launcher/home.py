"""The private HOME a launcher runs with, in the boot matrix and the host
suite alike: its declared configuration files hold harmless text, its
secret files the text the caller gives (a placeholder for a boot, a random
marker per file for the host suite, which then looks for it everywhere).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ccvm.matrix.launcher import Launcher

SETTINGS_TEXT = '{"model": "stub-model", "theme": "dark"}\n'
SECRET_PLACEHOLDER = "ccvm-boot-placeholder"  # a boot's secret files and variables hold this


def secret_json(value: str) -> str:
    """A secret file's text: a credential file as an agent keeps it."""
    return '{"token": "' + value + '"}\n'


def home_path(home: Path, tilde_path: str) -> Path:
    """~/x under ``home``."""
    return home / tilde_path.removeprefix("~/")


def plant_home(home: Path, launcher: Launcher, secret_value: Callable[[str], str]) -> None:
    """Configuration files with harmless text; each secret file (0600) with
    ``secret_value(its ~/ path)``."""
    home.mkdir(parents=True, exist_ok=True)
    for tilde in launcher.config_files:
        path = home_path(home, tilde)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SETTINGS_TEXT)
    for tilde in launcher.secrets.files:
        path = home_path(home, tilde)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secret_json(secret_value(tilde)))
        os.chmod(path, 0o600)
