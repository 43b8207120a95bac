"""What happens when a pinned package has left the archive: strict fails
with a re-pin message, newest takes the newest of the series and records
it.  Real apt against the Debian archive (the network tier: runs with --boot)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ccvm.errors import AssetError
from ccvm.guest.assets import AssetStore
from ccvm.matrix.axes import Arch
from ccvm.matrix.model import load_matrix
from ccvm.matrix.pins import PinPolicy

ROOT = Path(__file__).resolve().parent.parent


def pins_with_gone_kernel():
    guest = load_matrix(ROOT / "matrix").guest
    real = guest.archs[Arch.X86_64]
    gone = dataclasses.replace(real.kernel, version=real.kernel.version + "~gone1")
    archs = {**guest.archs, Arch.X86_64: dataclasses.replace(real, kernel=gone)}
    return dataclasses.replace(guest, archs=archs), real.kernel


def test_strict_policy_fails_and_says_how_to_repin():
    pins, real = pins_with_gone_kernel()
    store = AssetStore(pins, policy=PinPolicy.STRICT)
    with pytest.raises(AssetError) as caught:
        store.for_arch(Arch.X86_64)
    message = str(caught.value)
    assert "is no longer in the archive" in message
    assert "re-pin it in matrix/guest.yaml" in message and "--pin-policy newest" in message
    assert "sha256:" in message and "package: linux-image-6.1.0-" in message
    assert "\n" not in message


def test_newest_policy_takes_the_newest_of_the_series_and_records_it():
    pins, real = pins_with_gone_kernel()
    assets = AssetStore(pins, policy=PinPolicy.NEWEST).for_arch(Arch.X86_64)
    assert assets.kernel_source.what.startswith("linux-image-6.1.0-")
    assert assets.kernel_source.what.endswith("-amd64 " + assets.kernel_source.what.split()[-1])
    assert "superseded" in assets.kernel_source.note and assets.kernel_source.sha256 in assets.kernel_source.note
    assert assets.kernel.is_file()
    # A later strict run does not quietly reuse the substitute.
    with pytest.raises(AssetError, match="no longer in the archive"):
        AssetStore(pins, policy=PinPolicy.STRICT).for_arch(Arch.X86_64)


def test_a_pin_whose_sha_does_not_match_the_archive_is_refused():
    guest = load_matrix(ROOT / "matrix").guest
    real = guest.archs[Arch.AARCH64]
    wrong = dataclasses.replace(real.busybox, sha256="0" * 64)
    pins = dataclasses.replace(guest, archs={**guest.archs, Arch.AARCH64: dataclasses.replace(real, busybox=wrong)})
    with pytest.raises(AssetError, match="refusing to use it"):
        AssetStore(pins, policy=PinPolicy.STRICT).for_arch(Arch.AARCH64)
