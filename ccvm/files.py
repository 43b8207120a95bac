"""The ccvm cache directory ($XDG_CACHE_HOME/ccvm, default ~/.cache/ccvm),
writing files atomically, and the locks that let any number of ccvm
processes share one cache."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ccvm.errors import AssetError


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ccvm"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


REPORTS_DIR = "reports"  # where ccvm's checks write JUnit files and logs by default
REPORTS_IGNORE = "*\n"  # reports/.gitignore: nothing in it is ever a change git (or the gate) sees


def make_dirs(path: Path) -> None:
    """``mkdir -p path``; a ``reports`` directory this creates gets a ``.gitignore`` of ``*`` (and the
    gate leaves reports/ out of every change, ccvm.ci.gitchange), so no JUnit file or log ccvm writes
    there ever shows up as a change."""
    missing = []
    for directory in (path, *path.parents):
        if directory.exists():
            break
        missing.append(directory)
    path.mkdir(parents=True, exist_ok=True)
    for made in missing:
        if made.name == REPORTS_DIR:
            (made / ".gitignore").write_text(REPORTS_IGNORE, encoding="utf-8")


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- locks shared by every ccvm process using one cache -------------------------

LOCK_POLL_S = 0.1
OnWait = Callable[[int | None], None]  # called once, with the holder's pid when known, when a lock is busy


@contextmanager
def locked(path: Path, *, timeout_s: float, what: str, shared: bool = False, on_wait: OnWait | None = None):
    """Hold an flock on ``path`` (created when missing) for the ``with`` block.

    The lock belongs to the open file: when the holder exits, however it
    dies (SIGKILL too), the kernel releases it, so it is never stale.  An
    exclusive holder writes its pid into the file for the waiters' messages.
    Waiting longer than ``timeout_s`` is an AssetError naming the holder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _acquire(fd, path, timeout_s=timeout_s, what=what, shared=shared, on_wait=on_wait)
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            if not shared:
                os.ftruncate(fd, 0)  # a released lock names no holder
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, path: Path, *, timeout_s: float, what: str, shared: bool, on_wait: OnWait | None) -> None:
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except BlockingIOError:
            pass
        if not told and on_wait is not None:
            on_wait(lock_holder(path))
            told = True
        if time.monotonic() >= deadline:
            holder = lock_holder(path)
            by = f"pid {holder}" if holder else "another process"
            stop = f"; if that run is stuck, stop it (kill {holder})" if holder else ""
            raise AssetError(f"{what}: gave up after waiting {timeout_s:g}s for {path}, held by {by}{stop}")
        time.sleep(LOCK_POLL_S)


def lock_holder(path: Path) -> int | None:
    """The pid an exclusive holder wrote into the lock file, if it is still alive."""
    try:
        pid = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
