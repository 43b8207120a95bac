"""Kernel modules as kernels ship them: plain .ko, and .ko.xz (Debian, older nixpkgs),
.ko.zst (nixpkgs' kernels since 2024) and .ko.gz, read by name, depends and load order,
alone (ccvm.guest.kmod) and from a modules tree given with --modules (the asset store).

The modules are small ELF objects made here with a .modinfo section, as the kernel's
modpost writes it; .ko.zst is compressed both by the zstd program, as the kernel's
`make modules_install` does (the frame records its size), and by a streaming
compressor (it does not), when the program is installed.
"""

from __future__ import annotations

import gzip
import lzma
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import zstandard

from ccvm.errors import AssetError
from ccvm.guest import kmod
from ccvm.guest.assets import AssetStore
from ccvm.matrix.model import load_matrix


def elf_module(modinfo: dict[str, str]) -> bytes:
    """A 64-bit little-endian ELF relocatable object with a .modinfo and a .shstrtab section."""
    info = b"".join(f"{key}={value}\0".encode() for key, value in modinfo.items())
    names = b"\0.modinfo\0.shstrtab\0"
    header_size, section_size = 64, 64
    info_offset = header_size
    names_offset = info_offset + len(info)
    sections_offset = names_offset + len(names)
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, sections_offset, 0, 64, 0, 0, section_size, 3, 2)
    null = bytes(section_size)
    modinfo_section = struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, info_offset, len(info), 0, 0, 1, 0)
    names_section = struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, names_offset, len(names), 0, 0, 1, 0)
    return header + info + names + null + modinfo_section + names_section


def module(name: str, depends: str = "") -> bytes:
    return elf_module({"name": name, "depends": depends, "license": "GPL"})


def zstd_program(data: bytes) -> bytes:
    program = shutil.which("zstd")
    if program is None:
        pytest.skip("the zstd program is not installed (apt-get install zstd)")
    return subprocess.run([program, "-T0", "-q", "-c"], input=data, capture_output=True, check=True).stdout


def zstd_stream(data: bytes) -> bytes:
    writer = zstandard.ZstdCompressor().compressobj()  # streaming: the frame does not record its size
    return writer.compress(data) + writer.flush()


COMPRESSIONS = {
    ".ko": lambda data: data,
    ".ko.xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32),
    ".ko.zst": zstd_program,
    ".ko.gz": gzip.compress,
}


@pytest.mark.parametrize("suffix", list(COMPRESSIONS))
def test_a_module_is_read_whatever_its_compression(suffix):
    raw = module("9pnet-virtio", depends="9pnet,virtio_ring")
    parsed = kmod.parse_module(f"kernel/net/9p/9pnet-virtio{suffix}", COMPRESSIONS[suffix](raw))
    assert parsed.name == "9pnet_virtio"
    assert parsed.data == raw
    assert parsed.depends == ("9pnet", "virtio_ring")


def test_a_zstd_frame_without_its_size_is_read_too():
    raw = module("overlay")
    assert kmod.decompress("overlay.ko.zst", zstd_stream(raw)) == raw


@pytest.mark.parametrize("suffix", [".ko.xz", ".ko.zst", ".ko.gz"])
def test_data_that_is_not_what_its_suffix_says_is_a_value_error_naming_the_compression(suffix):
    with pytest.raises(ValueError, match=rf"not {suffix.rsplit('.', 1)[1]} data"):
        kmod.decompress(f"virtio_pci{suffix}", b"not compressed at all")


def test_a_zstd_modules_tree_as_nixpkgs_lays_it_out_is_ordered_by_depends(tmp_path):
    """--modules DIR with a kernel's lib/modules/VERSION tree of .ko.zst files, as the
    `modules` output of nixpkgs' kernel has it: the guest's modules and what they need."""
    tree = tmp_path / "modules" / "lib" / "modules" / "6.12.1" / "kernel"
    modules = {
        "fs/9p/9p": module("9p", depends="9pnet,netfs"),
        "fs/netfs/netfs": module("netfs"),
        "net/9p/9pnet": module("9pnet"),
        "net/9p/9pnet_virtio": module("9pnet_virtio", depends="9pnet,virtio_ring"),
        "drivers/virtio/virtio_ring": module("virtio_ring"),
        "drivers/virtio/virtio_pci": module("virtio_pci", depends="virtio_ring"),
        "drivers/char/virtio_console": module("virtio_console", depends="virtio_ring"),
        "fs/overlayfs/overlay": module("overlay"),
        "drivers/firmware/qemu_fw_cfg": module("qemu_fw_cfg"),
        "drivers/unused/unrelated": b"never read: not needed by the guest",
    }
    for relative, data in modules.items():
        path = tree / f"{relative}.ko.zst"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(zstd_stream(data) if relative != "drivers/unused/unrelated" else data)
    store = AssetStore(load_matrix().guest, root=tmp_path / "cache")
    ordered = store._modules_from_dir(tmp_path / "modules" / "lib" / "modules" / "6.12.1")
    names = [name for name, _ in ordered]
    assert set(names) == {f"{kmod.canonical(relative)}.ko" for relative in modules} - {"unrelated.ko"}
    for name, needs in (("9p.ko", ("9pnet.ko", "netfs.ko")), ("9pnet_virtio.ko", ("9pnet.ko", "virtio_ring.ko"))):
        assert all(names.index(need) < names.index(name) for need in needs), names
    assert all(data[:4] == b"\x7fELF" for _, data in ordered)  # written uncompressed into the initramfs


def test_a_broken_compressed_module_is_one_asset_error(tmp_path):
    tree = tmp_path / "lib" / "modules" / "6.12.1"
    tree.mkdir(parents=True)
    (tree / "virtio_pci.ko.zst").write_bytes(b"truncated")
    store = AssetStore(load_matrix().guest, root=tmp_path / "cache")
    with pytest.raises(AssetError, match=r"virtio_pci\.ko\.zst: not a usable kernel module \(not zst data"):
        store._modules_from_dir(tree)


def test_the_guest_module_list_is_what_this_test_builds():
    """The tree above holds every module matrix/guest.yaml asks for (so the test covers the real list)."""
    wanted = {kmod.canonical(name) for name in load_matrix().guest.modules}
    assert wanted <= {"virtio_pci", "virtio_console", "9pnet_virtio", "9p", "overlay", "qemu_fw_cfg"}


def test_cached_debian_modules_still_read(tmp_path):
    """Real modules when the shared cache holds the pinned Debian kernel's (uncompressed there)."""
    cached = sorted(Path.home().glob(".cache/ccvm/kernels/*/modules-*/*.ko"))
    if not cached:
        pytest.skip("no cached guest kernel modules (a boot test fetches them)")
    parsed = kmod.parse_module(cached[0].name, cached[0].read_bytes())
    assert parsed.name == kmod.canonical(cached[0].name)
    xz = lzma.compress(cached[0].read_bytes(), format=lzma.FORMAT_XZ)
    assert kmod.parse_module(f"{cached[0].name}.xz", xz).data == parsed.data
    assert kmod.parse_module(f"{cached[0].name}.zst", zstd_stream(cached[0].read_bytes())).data == parsed.data
