"""Kernel modules for the initramfs: read ``depends=`` from each module's
``.modinfo`` ELF section and order a set of modules so every module comes
after the modules it depends on.

Modules come uncompressed (``.ko``) or compressed as the kernel's
``modules_install`` writes them: ``.ko.xz`` (Debian, older nixpkgs),
``.ko.zst`` (nixpkgs since 2024, kernels 5.13 and newer; the ``zstandard``
library, as Python 3.11 has no zstd) or ``.ko.gz``."""

from __future__ import annotations

import gzip
import lzma
import struct
import zlib
from dataclasses import dataclass

import zstandard

COMPRESSED_SUFFIXES = (".xz", ".zst", ".gz")


@dataclass(frozen=True, kw_only=True)
class Module:
    name: str  # canonical: dashes as underscores, no suffix
    data: bytes  # uncompressed ELF
    depends: tuple[str, ...]


def canonical(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    for suffix in COMPRESSED_SUFFIXES:
        base = base.removesuffix(suffix)
    return base.removesuffix(".ko").replace("-", "_")


def _unzstd(data: bytes) -> bytes:
    # A stream decompressor: the frame need not record its content size (the kernel's `zstd -T0` does, others not).
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


_DECOMPRESSORS = {".xz": lzma.decompress, ".zst": _unzstd, ".gz": gzip.decompress}


def decompress(path: str, data: bytes) -> bytes:
    """The module's ELF bytes; a ValueError naming the compression when the data is not what its suffix says."""
    suffix = next((s for s in COMPRESSED_SUFFIXES if path.endswith(s)), "")
    if not suffix:
        return data
    try:
        return _DECOMPRESSORS[suffix](data)
    except (lzma.LZMAError, zstandard.ZstdError, zlib.error, EOFError, OSError) as exc:
        raise ValueError(f"not {suffix.lstrip('.')} data ({exc})") from None


def elf_section(data: bytes, wanted: str) -> bytes:
    """The bytes of one named section of a 64-bit little-endian ELF file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF object")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + index * shentsize)
        return name, offset, size

    _, names_offset, _ = section(shstrndx)
    for index in range(shnum):
        name_index, offset, size = section(index)
        end = data.index(b"\0", names_offset + name_index)
        if data[names_offset + name_index : end].decode() == wanted:
            return data[offset : offset + size]
    raise ValueError(f"no {wanted} section")


def modinfo(data: bytes) -> dict[str, str]:
    fields = {}
    for item in elf_section(data, ".modinfo").split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


def parse_module(path: str, raw: bytes) -> Module:
    data = decompress(path, raw)
    depends = modinfo(data).get("depends", "")
    return Module(
        name=canonical(path),
        data=data,
        depends=tuple(canonical(dep) for dep in depends.split(",") if dep),
    )


def load_order(roots: list[str], available: dict[str, Module]) -> list[Module]:
    """Roots and everything they need, dependencies first.

    Raises KeyError naming a module that is needed but not available (the
    caller decides whether a missing root means "built into the kernel").
    """
    ordered: list[Module] = []
    placed: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in placed:
            return
        if name in chain:
            raise ValueError(f"module dependency cycle: {' -> '.join(chain + (name,))}")
        module = available[name]
        for dep in module.depends:
            visit(dep, chain + (name,))
        placed.add(name)
        ordered.append(module)

    for root in roots:
        visit(canonical(root), ())
    return ordered
