"""Fetch Debian packages with the host's own apt-get, without touching the
host's apt configuration: a private lists and archive directory under the
ccvm cache, and the architectures given with ``-o`` options (so the other
arch needs no ``dpkg --add-architecture``).

Several ccvm processes may share one private apt.  apt's own locking is
off (it would need root), so ``apt.lock`` in its directory stands in: an
update holds it exclusively, queries and downloads hold it shared.  apt
keeps no cache file of its own here (``pkgcache.bin``), and each download
gets its own archives directory, so shared holders write nothing in
common.  ``updated`` is written after an update succeeds: lists without it
(an update that was killed) are fetched again.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ccvm.errors import AssetError
from ccvm.files import OnWait, locked, write_atomic
from ccvm.matrix.pins import Archive
from ccvm.processes import find_program, run
from ccvm.text import last_line

UPDATE_TIMEOUT_S = 300.0
DOWNLOAD_TIMEOUT_S = 900.0
QUERY_TIMEOUT_S = 60.0
LOCK_MARGIN_S = 60.0  # on top of the holder's own timeout, before a waiter gives up
UPDATE_WAIT = "updating the package lists"


@dataclass(frozen=True, kw_only=True)
class ArchiveEntry:
    package: str
    version: str
    sha256: str
    debian_arch: str


class PrivateApt:
    def __init__(self, root: Path, debian_archs: list[str], archive: Archive | None = None) -> None:
        self.archs = debian_archs
        self.sources = archive.sources_line(debian_archs) if archive else None
        if archive is not None and not Path(archive.keyring).is_file():
            raise AssetError(
                f"{archive.keyring} not found: install debian-archive-keyring "
                "(the pinned guest packages come from the Debian archive)"
            )
        # Each archive configuration gets its own lists, so changing it never mixes indexes.
        key = hashlib.sha256((self.sources or "host").encode()).hexdigest()[:12]
        self.root = root / key
        self._updated = False

    def _options(self, archives: Path | None = None) -> list[str]:
        lists, cache = self.root / "lists", self.root / "cache"
        for path in (lists / "partial", cache):
            path.mkdir(parents=True, exist_ok=True)
        options = [
            f"Dir::State::Lists={lists}",
            f"Dir::State::status={self.root / 'status'}",
            f"Dir::Cache={cache}",
            "Dir::Cache::pkgcache=",  # no shared cache file: apt builds it in memory each time
            "Dir::Cache::srcpkgcache=",
            "Debug::NoLocking=1",
            "APT::Get::AllowUnauthenticated=0",
        ]
        if archives is not None:
            options.append(f"Dir::Cache::Archives={archives}")
        (self.root / "status").touch()
        options += [f"APT::Architectures::={arch}" for arch in self.archs]
        if self.sources:
            source_list = self.root / "sources.list"
            if not source_list.is_file() or source_list.read_text() != self.sources:
                write_atomic(source_list, self.sources.encode())
            (self.root / "sources.list.d").mkdir(exist_ok=True)
            options += [f"Dir::Etc::SourceList={source_list}", f"Dir::Etc::SourceParts={self.root / 'sources.list.d'}"]
        if os.geteuid() == 0:
            options.append("APT::Sandbox::User=root")
        return [item for option in options for item in ("-o", option)]

    def _locked(self, what: str, *, shared: bool, timeout_s: float, on_wait: OnWait | None):
        return locked(
            self.root / "apt.lock",
            timeout_s=timeout_s + LOCK_MARGIN_S,
            what=f"apt-get {what} ({self.root})",
            shared=shared,
            on_wait=on_wait,
        )

    def _tool(self, name: str) -> str:
        found = find_program(name, path_only=True)
        if not found:
            raise AssetError(
                f"{name} not found: this host is not Debian-like; pass the guest's kernel, "
                "initrd or busybox by path (ccvm boot --help, docs: Troubleshooting)"
            )
        return found

    @property
    def _stamp(self) -> Path:
        return self.root / "updated"

    def _updated_since(self, since: float) -> bool:
        try:
            return self._stamp.stat().st_mtime >= since
        except OSError:
            return False

    def update(self, *, unless_since: float | None = None, on_wait: OnWait | None = None) -> None:
        """Fetch the indexes, once per process.  Not at all when an update that started after
        ``unless_since`` (a time.time()) has completed: ``unless_since=0`` means any update."""
        if self._updated:
            return
        # Shared holders include downloads: wait as long as one may take.
        with self._locked("update", shared=False, timeout_s=UPDATE_TIMEOUT_S + DOWNLOAD_TIMEOUT_S, on_wait=on_wait):
            if unless_since is not None and self._updated_since(unless_since) and self.lists_present():
                return  # another run updated while we waited: look again first
            started = time.time()
            result = run([self._tool("apt-get"), "-q", *self._options(), "update"], timeout_s=UPDATE_TIMEOUT_S)
            if not result.ok:
                raise AssetError(f"apt-get update failed: {last_line(result.stderr or result.stdout)}")
            write_atomic(self._stamp, b"")
            os.utime(self._stamp, (started, started))
        self._updated = True

    def lists_present(self) -> bool:
        """Whether an update has completed here (a killed one leaves no stamp)."""
        return self._stamp.is_file() and any((self.root / "lists").glob("*_Packages*"))

    def _query(self, args: list[str], on_wait: OnWait | None):
        with self._locked("query", shared=True, timeout_s=UPDATE_TIMEOUT_S, on_wait=on_wait):
            return run([self._tool("apt-cache"), *self._options(), *args], timeout_s=QUERY_TIMEOUT_S)

    def show(self, package: str, debian_arch: str, on_wait: OnWait | None = None) -> list[ArchiveEntry]:
        """Every version of one package the indexes know, newest first."""
        result = self._query(["show", f"{package}:{debian_arch}"], on_wait)
        if not result.ok:
            return []
        entries = [_parse_stanza(stanza, debian_arch) for stanza in result.stdout.split("\n\n")]
        return [e for e in entries if e is not None]

    def names_matching(self, pattern: re.Pattern[str], on_wait: OnWait | None = None) -> list[str]:
        result = self._query(["pkgnames"], on_wait)
        return sorted({name for name in result.stdout.split() if pattern.fullmatch(name)})

    def download(self, entry: ArchiveEntry, dest: Path, on_wait: OnWait | None = None) -> Path:
        """Download one package into ``dest``, a directory of this process's own (apt's partial files
        go there too, so concurrent downloads share nothing)."""
        archives = dest / "apt-archives"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        spec = f"{entry.package}:{entry.debian_arch}={entry.version}"
        with self._locked("download", shared=True, timeout_s=UPDATE_TIMEOUT_S, on_wait=on_wait):
            result = run(
                [self._tool("apt-get"), "-q", *self._options(archives), "download", spec],
                timeout_s=DOWNLOAD_TIMEOUT_S,
                cwd=str(dest),
            )
        if not result.ok:
            raise AssetError(f"apt-get download {spec} failed: {last_line(result.stderr or result.stdout)}")
        files = sorted(dest.glob(f"{entry.package}_*_{entry.debian_arch}.deb"), key=lambda p: p.stat().st_mtime)
        if not files:
            raise AssetError(f"apt-get download {spec} reported success but wrote no .deb in {dest}")
        return files[-1]


def _parse_stanza(stanza: str, debian_arch: str) -> ArchiveEntry | None:
    fields = dict(
        (key.strip(), value.strip())
        for key, sep, value in (line.partition(":") for line in stanza.splitlines() if not line.startswith(" "))
        if sep
    )
    if not {"Package", "Version", "SHA256"} <= fields.keys():
        return None
    return ArchiveEntry(
        package=fields["Package"], version=fields["Version"], sha256=fields["SHA256"], debian_arch=debian_arch
    )


def version_newer(a: str, b: str) -> bool:
    """True when Debian version a sorts after b (dpkg's own comparison)."""
    dpkg = find_program("dpkg", path_only=True)
    if dpkg is None:
        raise AssetError(
            "dpkg not found: cannot compare Debian versions; pin the package exactly or pass files by path"
        )
    result = run([dpkg, "--compare-versions", a, "gt", b], timeout_s=QUERY_TIMEOUT_S)
    return result.returncode == 0
