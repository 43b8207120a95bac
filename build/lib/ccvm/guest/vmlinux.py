"""The uncompressed x86_64 kernel inside a bzImage, for a direct PVH boot.

A bzImage is a real-mode setup stub, a decompressor and the compressed
kernel ELF (``vmlinux``).  Under TCG the decompressor (xz in Debian's
kernels) and the firmware's real-mode path take more time than the
kernel's own boot, so ccvm unpacks the ELF once and QEMU starts it
directly at its PVH entry point (``-kernel vmlinux`` on q35/pc).  That
works only for a kernel built with CONFIG_PVH, which carries an ELF note
of type ``XEN_ELFNOTE_PHYS32_ENTRY`` from owner "Xen"; anything else keeps
booting the bzImage.

The boot protocol (Documentation/arch/x86/boot.rst) puts the payload's
place in the setup header: ``setup_sects`` at 0x1f1, the "HdrS" magic at
0x202, the protocol version at 0x206 (2.08 or later has a payload),
``payload_offset`` and ``payload_length`` at 0x248 and 0x24c, the offset
counted from the start of the protected-mode code.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

SETUP_SECTS_AT = 0x1F1
MAGIC_AT, MAGIC = 0x202, b"HdrS"
VERSION_AT = 0x206
PAYLOAD_AT = 0x248  # payload_offset, payload_length: two little-endian u32
MIN_VERSION = 0x208

XEN_ELFNOTE_PHYS32_ENTRY = 18
PT_NOTE = 4

# Magic numbers of the payload formats (as scripts/extract-vmlinux checks them).
GZIP, XZ, LZMA, BZIP2, LZ4, ZSTD = "gzip", "xz", "lzma", "bzip2", "lz4", "zstd"
_MAGICS = (
    (b"\x1f\x8b", GZIP),
    (b"\xfd7zXZ\x00", XZ),
    (b"\x5d\x00\x00", LZMA),
    (b"BZh", BZIP2),
    (b"\x02\x21\x4c\x18", LZ4),
    (b"\x28\xb5\x2f\xfd", ZSTD),
)
DECOMPRESSIBLE = (GZIP, XZ, LZMA, BZIP2)  # what the Python standard library reads


class NotExtractable(Exception):
    """Why this kernel cannot be booted through PVH (one line)."""


@dataclass(frozen=True, kw_only=True)
class Payload:
    compression: str
    data: bytes  # still compressed


def bzimage_payload(image: bytes) -> Payload:
    """The compressed kernel inside a bzImage, and how it is compressed."""
    if len(image) < PAYLOAD_AT + 8 or image[MAGIC_AT : MAGIC_AT + 4] != MAGIC:
        raise NotExtractable("not a bzImage (no HdrS setup header)")
    version = struct.unpack_from("<H", image, VERSION_AT)[0]
    if version < MIN_VERSION:
        raise NotExtractable(f"boot protocol {version >> 8}.{version & 0xFF:02d} predates payload fields (2.08)")
    setup_sects = image[SETUP_SECTS_AT] or 4
    offset, length = struct.unpack_from("<II", image, PAYLOAD_AT)
    start = (setup_sects + 1) * 512 + offset
    if length == 0 or start + length > len(image):
        raise NotExtractable(f"payload at {start}+{length} lies outside the {len(image)}-byte file")
    data = image[start : start + length]
    for magic, name in _MAGICS:
        if data.startswith(magic):
            return Payload(compression=name, data=data)
    raise NotExtractable(f"payload compression not recognised (starts {data[:6].hex()})")


def decompress(payload: Payload) -> bytes:
    """The payload uncompressed; trailing bytes (the kernel appends its
    size) are ignored."""
    if payload.compression not in DECOMPRESSIBLE:
        raise NotExtractable(
            f"payload is {payload.compression}-compressed; ccvm reads {', '.join(DECOMPRESSIBLE)} only"
        )
    try:
        if payload.compression == GZIP:
            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(payload.data)
        if payload.compression == BZIP2:
            return bz2.BZ2Decompressor().decompress(payload.data)
        form = lzma.FORMAT_XZ if payload.compression == XZ else lzma.FORMAT_ALONE
        return lzma.LZMADecompressor(format=form).decompress(payload.data)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise NotExtractable(f"{payload.compression} payload does not decompress ({exc})") from None


def _elf_layout(elf: bytes) -> tuple[str, int, int, int, int]:
    """(byte order, class 32/64, phoff, phentsize, phnum) of an ELF file."""
    if elf[:4] != b"\x7fELF" or len(elf) < 64:
        raise NotExtractable("the payload is not an ELF file")
    cls, data = elf[4], elf[5]
    order = "<" if data == 1 else ">"
    if cls == 2:
        (phoff,) = struct.unpack_from(order + "Q", elf, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", elf, 0x36)
        return order, 64, phoff, phentsize, phnum
    if cls == 1:
        (phoff,) = struct.unpack_from(order + "I", elf, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", elf, 0x2A)
        return order, 32, phoff, phentsize, phnum
    raise NotExtractable(f"unknown ELF class {cls}")


def _note_segments(elf: bytes) -> list[tuple[str, bytes]]:
    order, bits, phoff, phentsize, phnum = _elf_layout(elf)
    segments = []
    for index in range(phnum):
        at = phoff + index * phentsize
        if bits == 64:
            p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(order + "IIQQQQ", elf, at)
        else:
            p_type, p_offset, _, _, p_filesz = struct.unpack_from(order + "IIIII", elf, at)
        if p_type == PT_NOTE:
            segments.append((order, elf[p_offset : p_offset + p_filesz]))
    return segments


def elf_notes(elf: bytes) -> list[tuple[str, int]]:
    """(owner, type) of every note in the ELF's PT_NOTE segments."""
    found = []
    try:
        for order, segment in _note_segments(elf):
            at = 0
            while at + 12 <= len(segment):
                namesz, descsz, kind = struct.unpack_from(order + "III", segment, at)
                name = segment[at + 12 : at + 12 + namesz].rstrip(b"\0").decode("ascii", "replace")
                found.append((name, kind))
                at += 12 + _align4(namesz) + _align4(descsz)
    except struct.error:
        raise NotExtractable("the ELF's headers are truncated") from None
    return found


def _align4(size: int) -> int:
    return (size + 3) & ~3


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def has_pvh_note(elf: bytes) -> bool:
    return ("Xen", XEN_ELFNOTE_PHYS32_ENTRY) in elf_notes(elf)


def pvh_vmlinux(image: bytes) -> bytes:
    """The bzImage's kernel ELF, ready for ``-kernel``; raises NotExtractable
    (with the reason) for a kernel that cannot be booted through PVH."""
    elf = decompress(bzimage_payload(image))
    if not has_pvh_note(elf):
        raise NotExtractable("the kernel has no PVH entry note (built without CONFIG_PVH)")
    return elf
