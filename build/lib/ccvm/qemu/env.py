"""The environment handed to QEMU: a short allow-list, never the caller's
whole environment (which may hold tokens a local user could read from
/proc/<pid>/environ)."""

from __future__ import annotations

import os
from collections.abc import Mapping

PASSED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TERM", "XDG_RUNTIME_DIR")


def qemu_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    source = os.environ if env is None else env
    return {key: source[key] for key in PASSED if key in source}
