"""A writer for the newc ("070701") cpio format the Linux initramfs reads.

Entries are written in the order given; directories must precede their
contents.  Timestamps are fixed at 0 and owners at root so the same inputs
always give the same bytes (the initramfs is cached by content hash).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True, kw_only=True)
class Entry:
    path: str  # relative, no leading slash: "bin/busybox"
    mode: int  # full st_mode, type bits included
    data: bytes = b""

    @classmethod
    def directory(cls, path: str, perm: int = 0o755) -> Entry:
        return cls(path=path, mode=stat.S_IFDIR | perm)

    @classmethod
    def file(cls, path: str, data: bytes, perm: int = 0o644) -> Entry:
        return cls(path=path, mode=stat.S_IFREG | perm, data=data)

    @classmethod
    def symlink(cls, path: str, target: str) -> Entry:
        return cls(path=path, mode=stat.S_IFLNK | 0o777, data=target.encode())


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _header(*, ino: int, mode: int, nlink: int, size: int, name_size: int) -> bytes:
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, name_size, 0]
    return MAGIC + b"".join(b"%08X" % value for value in fields)


def _record(out: BinaryIO, *, ino: int, name: str, mode: int, data: bytes) -> None:
    encoded = name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(mode) else 1
    header = _header(ino=ino, mode=mode, nlink=nlink, size=len(data), name_size=len(encoded))
    out.write(header + encoded + _pad(len(header) + len(encoded)))
    out.write(data + _pad(len(data)))


def write_newc(out: BinaryIO, entries: list[Entry]) -> None:
    seen: set[str] = set()
    for ino, entry in enumerate(entries, start=1):
        name = entry.path.strip("/")
        if not name or name in seen or ".." in name.split("/"):
            raise ValueError(f"bad or repeated cpio path {entry.path!r}")
        seen.add(name)
        _record(out, ino=ino, name=name, mode=entry.mode, data=entry.data)
    _record(out, ino=0, name=TRAILER, mode=0, data=b"")


def read_newc(data: bytes) -> list[Entry]:
    """Parse a newc archive (used by tests and by ``ccvm doctor``)."""
    entries, offset = [], 0
    while True:
        if data[offset : offset + 6] != MAGIC:
            raise ValueError(f"not a newc header at byte {offset}")
        fields = [int(data[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name_start = offset + 110
        name = data[name_start : name_start + name_size - 1].decode()
        body_start = name_start + name_size + (-(110 + name_size) % 4)
        if name == TRAILER:
            return entries
        entries.append(Entry(path=name, mode=mode, data=data[body_start : body_start + size]))
        offset = body_start + size + (-size % 4)
