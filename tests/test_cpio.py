import io
import stat
import subprocess

import pytest

from ccvm.guest import cpio


def _archive(entries):
    buffer = io.BytesIO()
    cpio.write_newc(buffer, entries)
    return buffer.getvalue()


ENTRIES = [
    cpio.Entry.directory("bin"),
    cpio.Entry.file("bin/busybox", b"\x7fELF" + bytes(range(256)) * 3, 0o755),
    cpio.Entry.symlink("bin/sh", "busybox"),
    cpio.Entry.file("init", b"#!/bin/sh\necho hi\n", 0o755),
    cpio.Entry.file("etc/odd name ✓", b"x"),
    cpio.Entry.file("empty", b""),
]


def test_round_trip_through_our_reader():
    entries = cpio.read_newc(_archive(ENTRIES))
    assert [(e.path, e.mode, e.data) for e in entries] == [(e.path, e.mode, e.data) for e in ENTRIES]


def test_every_header_and_body_is_four_byte_aligned():
    data = _archive(ENTRIES)
    assert data.startswith(b"070701")
    assert len(data) % 4 == 0
    assert data.count(b"TRAILER!!!") == 1


def test_same_inputs_same_bytes():
    assert _archive(ENTRIES) == _archive(list(ENTRIES))


def test_gnu_cpio_lists_and_extracts_what_we_wrote(tmp_path, cpio_bin):
    data = _archive(ENTRIES)
    listing = subprocess.run([cpio_bin, "-t", "--quiet"], input=data, capture_output=True, check=True).stdout
    assert listing.decode().splitlines() == [e.path for e in ENTRIES]
    subprocess.run([cpio_bin, "-id", "--quiet"], input=data, cwd=tmp_path, check=True)
    assert (tmp_path / "bin/busybox").read_bytes() == ENTRIES[1].data
    assert stat.S_IMODE((tmp_path / "bin/busybox").stat().st_mode) == 0o755
    assert (tmp_path / "bin/sh").is_symlink() and str((tmp_path / "bin/sh").readlink()) == "busybox"


@pytest.mark.parametrize("bad", ["", "/", "a/../b"])
def test_bad_paths_are_refused(bad):
    with pytest.raises(ValueError):
        _archive([cpio.Entry.file(bad or "/", b"")] if bad else [cpio.Entry.file("", b"")])


def test_repeated_path_is_refused():
    with pytest.raises(ValueError):
        _archive([cpio.Entry.file("a", b""), cpio.Entry.file("a", b"")])
