"""The vmlinux inside a bzImage, for the x86_64 PVH boot: synthetic bzImages
made here (each compression, with and without a PVH note), the asset store's
fallback and cache, and the real pinned kernel."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import struct
from pathlib import Path

import pytest

from ccvm.guest import vmlinux
from ccvm.guest.assets import AssetStore, Overrides
from ccvm.matrix.axes import Arch
from ccvm.matrix.model import load_matrix

ROOT = Path(__file__).resolve().parent.parent


def elf_with_note(kind: int) -> bytes:
    """A minimal ELF64 whose one PT_NOTE segment holds a "Xen" note of ``kind``."""
    note = struct.pack("<III", 4, 4, kind) + b"Xen\0" + struct.pack("<I", 0x1000000)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x1000000, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", vmlinux.PT_NOTE, 4, 64 + 56, 0, 0, len(note), len(note), 4)
    return header + phdr + note + b"\x90" * 256


def bzimage(payload: bytes, *, version: int = 0x20F) -> bytes:
    """A bzImage layout: one setup sector after the boot sector, then the
    protected-mode code with the payload 16 bytes in and the size appended."""
    setup = bytearray(1024)
    setup[vmlinux.SETUP_SECTS_AT] = 1
    setup[vmlinux.MAGIC_AT : vmlinux.MAGIC_AT + 4] = vmlinux.MAGIC
    struct.pack_into("<H", setup, vmlinux.VERSION_AT, version)
    struct.pack_into("<II", setup, vmlinux.PAYLOAD_AT, 16, len(payload))
    return bytes(setup) + b"\xcc" * 16 + payload + struct.pack("<I", 12345)


PVH_ELF = elf_with_note(vmlinux.XEN_ELFNOTE_PHYS32_ENTRY)
COMPRESSORS = {
    "gzip": gzip.compress,
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32),
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
    "bzip2": bz2.compress,
}


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_each_stdlib_compression_yields_the_elf(compression):
    image = bzimage(COMPRESSORS[compression](PVH_ELF))
    assert vmlinux.bzimage_payload(image).compression == compression
    assert vmlinux.pvh_vmlinux(image) == PVH_ELF


def test_a_kernel_without_the_pvh_note_is_refused_with_the_reason():
    image = bzimage(gzip.compress(elf_with_note(6)))  # a Xen note, but not PHYS32_ENTRY
    assert ("Xen", 6) in vmlinux.elf_notes(vmlinux.decompress(vmlinux.bzimage_payload(image)))
    with pytest.raises(vmlinux.NotExtractable, match="no PVH entry note"):
        vmlinux.pvh_vmlinux(image)


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (b"\x7fELF" + bytes(2000), "not a bzImage"),
        (bzimage(gzip.compress(PVH_ELF), version=0x206), "predates payload fields"),
        (bzimage(b"\x28\xb5\x2f\xfd" + bytes(64)), "zstd-compressed; ccvm reads gzip, xz, lzma, bzip2 only"),
        (bzimage(b"\x02\x21\x4c\x18" + bytes(64)), "lz4-compressed"),
        (bzimage(b"PK\x03\x04" + bytes(64)), "not recognised"),
        (bzimage(b"\x1f\x8b" + bytes(64)), "gzip payload does not decompress"),
        (bzimage(gzip.compress(b"not an elf" * 10)), "not an ELF"),
    ],
)
def test_what_cannot_be_extracted_says_why(image, reason):
    with pytest.raises(vmlinux.NotExtractable, match=reason):
        vmlinux.pvh_vmlinux(image)


def test_a_payload_outside_the_file_is_refused():
    image = bytearray(bzimage(gzip.compress(PVH_ELF)))
    struct.pack_into("<II", image, vmlinux.PAYLOAD_AT, 16, len(image))
    with pytest.raises(vmlinux.NotExtractable, match="outside"):
        vmlinux.bzimage_payload(bytes(image))


def store_with_kernel(tmp_path: Path, kernel: bytes) -> tuple[AssetStore, Path]:
    given = tmp_path / "bzImage"
    given.write_bytes(kernel)
    initrd = tmp_path / "initrd.cpio"
    initrd.write_bytes(b"070701")  # given by path: nothing is fetched or built
    overrides = Overrides(kernel={Arch.X86_64: given}, initrd={Arch.X86_64: initrd})
    guest = load_matrix(ROOT / "matrix").guest
    return AssetStore(guest, overrides=overrides, root=tmp_path / "cache"), given


def test_a_supplied_kernel_without_pvh_boots_as_the_bzimage_with_a_note(tmp_path):
    store, given = store_with_kernel(tmp_path, bzimage(gzip.compress(elf_with_note(6))))
    assets = store.for_arch(Arch.X86_64)
    assert assets.kernel == given.resolve() and not assets.pvh
    assert any("no PVH entry note" in n and "booting the bzImage" in n for n in assets.notes), assets.notes
    marker = next((tmp_path / "cache" / "vmlinux").glob("*.fallback"))
    before = marker.stat().st_mtime_ns
    again, _ = store_with_kernel(tmp_path, given.read_bytes())  # a later run: the decision is cached
    assert again.for_arch(Arch.X86_64).notes == assets.notes
    assert marker.stat().st_mtime_ns == before


def test_a_supplied_kernel_with_pvh_boots_its_cached_vmlinux(tmp_path):
    store, given = store_with_kernel(tmp_path, bzimage(gzip.compress(PVH_ELF)))
    assets = store.for_arch(Arch.X86_64)
    assert assets.pvh and assets.kernel_image == given.resolve() and assets.notes == ()
    assert assets.kernel == tmp_path / "cache" / "vmlinux" / assets.kernel_source.sha256
    assert assets.kernel.read_bytes() == PVH_ELF
    assert not list(assets.kernel.parent.glob(".*"))  # written atomically: no temporary left behind


def test_a_supplied_elf_kernel_boots_as_given(tmp_path):
    store, given = store_with_kernel(tmp_path, PVH_ELF)
    assets = store.for_arch(Arch.X86_64)
    assert assets.kernel == given.resolve() and assets.notes == ()


def test_the_pinned_bzimage_yields_a_pvh_vmlinux_cached_by_its_sha256():
    from ccvm.files import sha256_file

    assets = AssetStore(load_matrix(ROOT / "matrix").guest).for_arch(Arch.X86_64)
    assert assets.pvh, assets.notes
    image = assets.kernel_image.read_bytes()
    assert image[vmlinux.MAGIC_AT : vmlinux.MAGIC_AT + 4] == vmlinux.MAGIC  # the packaged file is the bzImage
    assert assets.kernel.name == sha256_file(assets.kernel_image) and assets.kernel.parent.name == "vmlinux"
    elf = assets.kernel.read_bytes()
    assert vmlinux.has_pvh_note(elf)
    assert elf == vmlinux.pvh_vmlinux(image)  # the cached file is exactly what the bzImage holds
    assert os.stat(assets.kernel).st_size > 4 * len(image)  # uncompressed
