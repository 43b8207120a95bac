"""The agent configuration staged for the guest.

From a host directory (default ``~/.claude``) two optional files are
copied, never moved or rewritten: ``settings.json`` (must be valid JSON)
and ``.credentials.json`` (never read by ccvm beyond copying it, and never
printed).  A missing file is simply not staged.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from ccvm.errors import UsageError
from ccvm.qemu.launch import HomeFile

SETTINGS = "settings.json"
CREDENTIALS = ".credentials.json"
GUEST_DIR = ".claude"


def _readable(path: Path) -> bool:
    """True for a readable regular file, False when there is none; anything
    else (a FIFO, a directory, no permission) is a one-line error.  The type
    is checked before opening, so a FIFO cannot block the launcher."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise UsageError(f"{path}: cannot look at it ({exc.strerror}); fix the permissions or move it away") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path}: not a regular file; move it away")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror}); fix its permissions or move it away") from None
    return True


def _check_settings(path: Path) -> None:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text; fix it or move it away (nothing was changed)") from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix it or move it away (nothing was changed)"
        ) from None


def home_files(config_dir: Path) -> tuple[HomeFile, ...]:
    if str(config_dir) in ("", "."):
        raise UsageError("the config directory is empty (CCVM_CONFIG_DIR or --config-dir); name a directory")
    try:
        is_other = config_dir.exists() and not config_dir.is_dir()
    except OSError as exc:
        raise UsageError(f"{config_dir}: cannot look at it ({exc.strerror})") from None
    if is_other:
        raise UsageError(f"{config_dir}: the config directory is not a directory (set CCVM_CONFIG_DIR or --config-dir)")
    found = []
    settings = config_dir / SETTINGS
    if _readable(settings):
        _check_settings(settings)
        found.append(HomeFile(relative=f"{GUEST_DIR}/{SETTINGS}", source=settings))
    credentials = config_dir / CREDENTIALS
    if _readable(credentials):
        found.append(HomeFile(relative=f"{GUEST_DIR}/{CREDENTIALS}", source=credentials))
    return tuple(found)
