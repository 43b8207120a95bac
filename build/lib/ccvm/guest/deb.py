"""Unpack Debian packages without dpkg: a .deb is an ar archive holding a tar."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

from ccvm.errors import AssetError

AR_MAGIC = b"!<arch>\n"


def ar_members(blob: bytes) -> dict[str, bytes]:
    """The members of a System V / GNU ar archive, by name."""
    if not blob.startswith(AR_MAGIC):
        raise ValueError("not an ar archive")
    members, offset = {}, len(AR_MAGIC)
    while offset + 60 <= len(blob):
        header = blob[offset : offset + 60]
        name = header[0:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        start = offset + 60
        members[name] = blob[start : start + size]
        offset = start + size + (size % 2)
    return members


def data_tar(deb: Path) -> tarfile.TarFile:
    """Open the data.tar.* member of a .deb (gz, xz or uncompressed)."""
    try:
        members = ar_members(deb.read_bytes())
    except (OSError, ValueError) as exc:
        raise AssetError(f"{deb}: cannot read as a Debian package: {exc}") from None
    for name, blob in members.items():
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise AssetError(f"{deb}: {name} is zstd-compressed; unpack it and pass the files by path")
            return tarfile.open(fileobj=io.BytesIO(blob), mode="r:*")
    raise AssetError(f"{deb}: no data.tar member; is this a Debian package?")


def extract_matching(deb: Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """Regular files of the package whose normalised path satisfies ``wanted``."""
    found = {}
    with data_tar(deb) as tar:
        for member in tar:
            path = member.name.removeprefix("./")
            if member.isfile() and wanted(path):
                handle = tar.extractfile(member)
                if handle is not None:
                    found[path] = handle.read()
    return found
