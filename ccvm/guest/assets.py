"""Guest assets per arch: kernel, busybox and the initramfs built from them.

Resolution order for each file: a path given on the command line, then
the environment (CCVM_KERNEL_<ARCH>, CCVM_INITRD_<ARCH>, CCVM_BUSYBOX_<ARCH>,
CCVM_MODULES_<ARCH>), then the pinned Debian package from matrix/guest.yaml.
Everything fetched or built lands in the cache keyed by content, so a warm
run downloads and builds nothing.

An x86_64 kernel is booted through PVH when it can be: the vmlinux ELF is
unpacked from the bzImage once (ccvm.guest.vmlinux) and cached as
vmlinux/<bzImage sha256>; a kernel that cannot (no PVH note, an unknown
compression) boots as the bzImage, with a note saying why.

Any number of ccvm processes may share one cache: each download (per
sha256) and each unpack or build holds a lock (``locks/``, see
``ccvm.files.locked``) and looks again once it has it, so each package is
downloaded once and the others wait, saying so.  A download goes to a
directory of its own, is checked against its sha256 and renamed into
``debs/``: a run killed mid-way leaves nothing a later run trusts.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ccvm.errors import AssetError
from ccvm.files import OnWait, cache_root, locked, pid_alive, sha256_file, write_atomic
from ccvm.guest import cpio, kmod, vmlinux
from ccvm.guest.apt import DOWNLOAD_TIMEOUT_S, LOCK_MARGIN_S, UPDATE_WAIT, ArchiveEntry, PrivateApt, version_newer
from ccvm.guest.deb import extract_matching
from ccvm.matrix.axes import Arch
from ccvm.matrix.pins import GuestPins, PackagePin, PinPolicy
from ccvm.memo import OncePerKey

INITRAMFS_FORMAT = 1  # bump when the initramfs layout changes
BUILD_LOCK_TIMEOUT_S = 300.0  # waiting for another run's unpack or initramfs build
Notify = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Overrides:
    """Files supplied by path instead of the pinned packages."""

    kernel: dict[Arch, Path] = field(default_factory=dict)
    initrd: dict[Arch, Path] = field(default_factory=dict)
    busybox: dict[Arch, Path] = field(default_factory=dict)
    modules: dict[Arch, Path] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: os._Environ | dict) -> Overrides:
        found: dict[str, dict[Arch, Path]] = {"kernel": {}, "initrd": {}, "busybox": {}, "modules": {}}
        for kind, per_arch in found.items():
            for arch in Arch:
                value = env.get(f"CCVM_{kind.upper()}_{arch.value.upper()}")
                if value:
                    per_arch[arch] = Path(value)
        return cls(**found)

    def merged(self, other: Overrides) -> Overrides:
        """These overrides, with ``other`` winning where both name a file."""
        return Overrides(
            **{k: {**getattr(self, k), **getattr(other, k)} for k in ("kernel", "initrd", "busybox", "modules")}
        )


@dataclass(frozen=True, kw_only=True)
class Resolved:
    """Which package (or path) stood in for a pin, and its sha256."""

    what: str  # "linux-image-6.1.0-47-amd64 6.1.170-3" or a path
    sha256: str
    note: str = ""  # set when the policy replaced a superseded pin


@dataclass(frozen=True, kw_only=True)
class GuestAssets:
    arch: Arch
    kernel: Path  # what QEMU boots: the PVH vmlinux, or the kernel as packaged
    initrd: Path
    kernel_source: Resolved
    notes: tuple[str, ...] = ()
    kernel_image: Path | None = None  # the kernel as packaged or given (bzImage, Image)

    @property
    def pvh(self) -> bool:
        return self.kernel_image is not None and self.kernel != self.kernel_image


class AssetStore:
    """Fetches and builds guest assets; safe to share between threads."""

    def __init__(
        self,
        pins: GuestPins,
        *,
        overrides: Overrides | None = None,
        policy: PinPolicy | None = None,
        root: Path | None = None,
        notify: Notify | None = None,
    ) -> None:
        self.pins = pins
        self.notify = notify or (lambda text: None)
        self.overrides = overrides or Overrides()
        self.policy = policy or pins.policy
        self.root = root or cache_root()
        self._apt_once: OncePerKey[str, PrivateApt] = OncePerKey(
            lambda _: PrivateApt(self.root / "apt", [a.debian for a in Arch], self.pins.archive)
        )
        self._per_arch: OncePerKey[Arch, GuestAssets] = OncePerKey(self._prepare)

    @property
    def _apt(self) -> PrivateApt:
        return self._apt_once.get("apt")

    def _waiting(self, arch: Arch, what: str) -> OnWait:
        def note(pid: int | None) -> None:
            by = f" (pid {pid})" if pid else ""
            self.notify(f"guest assets for {arch}: waiting for another ccvm run{by} {what}")

        return note

    def _locked(self, name: str, arch: Arch, what: str, timeout_s: float = BUILD_LOCK_TIMEOUT_S):
        """The cache-wide lock ``name``, telling the user when another run holds it."""
        return locked(
            self.root / "locks" / f"{name}.lock",
            timeout_s=timeout_s,
            what=f"guest assets for {arch}: {what}",
            on_wait=self._waiting(arch, what),
        )

    def for_arch(self, arch: Arch) -> GuestAssets:
        """The arch's kernel and initramfs, prepared once per store (concurrent callers wait for it)."""
        return self._per_arch.get(arch)

    # -- resolution -------------------------------------------------------

    def _prepare(self, arch: Arch) -> GuestAssets:
        if arch in self.overrides.modules and arch not in self.overrides.kernel:
            raise AssetError(
                f"modules for {arch} were given without a kernel for {arch}; "
                "modules must come from the same build as the kernel (give both)"
            )
        image, kernel_src, modules = self._kernel(arch)
        kernel, boot_note = self._bootable(arch, image, kernel_src)
        initrd = self._readable(self.overrides.initrd.get(arch), f"initrd for {arch}")
        notes = tuple(n for n in (kernel_src.note, boot_note) if n)
        if initrd is None:
            busybox, busybox_src = self._busybox(arch)
            initrd = self._initramfs(busybox, modules, arch)
            notes += tuple(n for n in (busybox_src.note,) if n)
        return GuestAssets(
            arch=arch, kernel=kernel, initrd=initrd, kernel_source=kernel_src, notes=notes, kernel_image=image
        )

    def _bootable(self, arch: Arch, image: Path, source: Resolved) -> tuple[Path, str]:
        """The file QEMU boots for ``image``, and a note when it is not the fast path."""
        if arch is not Arch.X86_64 or vmlinux.is_elf(image):
            return image, ""  # aarch64 boots its Image directly; an ELF given by path boots as given
        sha = source.sha256 if source.what == str(image) else sha256_file(image)
        target = self.root / "vmlinux" / sha
        fallback = target.with_name(f"{sha}.fallback")
        if not target.is_file() and not fallback.is_file():
            self._extract_vmlinux(image, target, fallback)
        if target.is_file():
            return target, ""
        reason = fallback.read_text().strip()
        return image, f"kernel {source.what}: {reason}; booting the bzImage (no direct PVH boot, slower under TCG)"

    @staticmethod
    def _extract_vmlinux(image: Path, target: Path, fallback: Path) -> None:
        try:
            data = image.read_bytes()
        except OSError as exc:
            raise AssetError(f"{image}: cannot read ({exc.strerror})") from None
        try:
            elf = vmlinux.pvh_vmlinux(data)
        except vmlinux.NotExtractable as exc:
            write_atomic(fallback, f"{exc}\n".encode())
            return
        write_atomic(target, elf)

    @staticmethod
    def _readable(path: Path | None, what: str) -> Path | None:
        if path is None:
            return None
        if not path.is_file() or not os.access(path, os.R_OK):
            raise AssetError(f"{what}: {path} is not a readable file")
        return path.resolve()

    def _pins_for(self, arch: Arch):
        if arch not in self.pins.archs:
            raise AssetError(f"matrix/guest.yaml pins no packages for {arch}; add them or pass files by path")
        return self.pins.archs[arch]

    def _kernel(self, arch: Arch) -> tuple[Path, Resolved, list[tuple[str, bytes]]]:
        given = self._readable(self.overrides.kernel.get(arch), f"kernel for {arch}")
        if given is not None:
            modules_dir = self.overrides.modules.get(arch)
            return given, Resolved(what=str(given), sha256=sha256_file(given)), self._modules_from_dir(modules_dir)
        deb, resolved = self._fetch(self._pins_for(arch).kernel, arch)
        vmlinuz, modules = self._unpack_kernel(deb, resolved, arch)
        return vmlinuz, resolved, modules

    def _busybox(self, arch: Arch) -> tuple[bytes, Resolved]:
        given = self._readable(self.overrides.busybox.get(arch), f"busybox for {arch}")
        if given is not None:
            return given.read_bytes(), Resolved(what=str(given), sha256=sha256_file(given))
        deb, resolved = self._fetch(self._pins_for(arch).busybox, arch)
        target = self.root / "busybox" / resolved.sha256 / "busybox"
        if not target.is_file():
            with self._locked(f"busybox-{resolved.sha256}", arch, f"unpacking {resolved.what}"):
                if not target.is_file():  # another run may have done it while we waited
                    found = extract_matching(deb, lambda p: p == "bin/busybox")
                    if not found:
                        raise AssetError(f"{deb}: no bin/busybox inside")
                    write_atomic(target, found["bin/busybox"], 0o755)
        return target.read_bytes(), resolved

    # -- fetching ------------------------------------------------------------

    def _fetch(self, pin: PackagePin, arch: Arch) -> tuple[Path, Resolved]:
        """The .deb for a pin, verified, from the cache or the archive."""
        record = self.root / "resolved" / f"{pin.package}_{pin.version}_{arch.debian}.json".replace(":", "%3a")
        cached = self._cached_resolution(record, pin)
        if cached is not None:
            return cached
        entry, note = self._choose(pin, arch)
        deb = self.root / "debs" / f"{entry.sha256}.deb"
        if not deb.is_file():
            what = f"downloading {entry.package} {entry.version}"
            with self._locked(f"deb-{entry.sha256}", arch, what, DOWNLOAD_TIMEOUT_S + LOCK_MARGIN_S):
                if not deb.is_file():  # another run may have fetched it while we waited
                    self.notify(f"guest assets for {arch}: {what}")
                    self._download_verified(entry, deb, arch)
        resolved = Resolved(what=f"{entry.package} {entry.version}", sha256=entry.sha256, note=note)
        write_atomic(record, json.dumps(resolved.__dict__).encode())
        return deb, resolved

    def _cached_resolution(self, record: Path, pin: PackagePin) -> tuple[Path, Resolved] | None:
        try:
            resolved = Resolved(**json.loads(record.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if resolved.note and self.policy is PinPolicy.STRICT:
            return None  # a substitute chosen under "newest" is not the pin
        if not resolved.note and resolved.sha256 != pin.sha256:
            return None  # the pin changed: resolve (and verify) again
        deb = self.root / "debs" / f"{resolved.sha256}.deb"
        return (deb, resolved) if deb.is_file() else None

    def _choose(self, pin: PackagePin, arch: Arch) -> tuple[ArchiveEntry, str]:
        waiting = self._waiting(arch, UPDATE_WAIT)
        if not self._apt.lists_present():
            self._apt.update(unless_since=0.0, on_wait=waiting)
        looked = time.time()
        entry = self._find_pinned(pin, arch)
        if entry is None:
            self._apt.update(unless_since=looked, on_wait=waiting)
            entry = self._find_pinned(pin, arch)
        if entry is not None:
            if entry.sha256 != pin.sha256:
                raise AssetError(
                    f"{pin.package} {pin.version} ({arch.debian}): the archive's sha256 is {entry.sha256}, "
                    f"the pin in matrix/guest.yaml says {pin.sha256}; refusing to use it"
                )
            return entry, ""
        newest = self._newest_of_series(pin, arch)
        if newest is None:
            raise AssetError(
                f"{pin.package} ({arch.debian}) and its series are not in the archive; check the host's apt sources"
            )
        repin = f"package: {newest.package}, version: {newest.version}, sha256: {newest.sha256}"
        if self.policy is PinPolicy.STRICT:
            raise AssetError(
                f"pinned {pin.package} {pin.version} ({arch.debian}) is no longer in the archive; "
                f"re-pin it in matrix/guest.yaml ({repin}) or use --pin-policy newest"
            )
        return (
            newest,
            f"pin {pin.package} {pin.version} superseded; policy newest used "
            f"{newest.package} {newest.version} sha256 {newest.sha256}",
        )

    def _find_pinned(self, pin: PackagePin, arch: Arch) -> ArchiveEntry | None:
        entries = self._apt.show(pin.package, arch.debian, self._waiting(arch, UPDATE_WAIT))
        return next((e for e in entries if e.version == pin.version), None)

    def _newest_of_series(self, pin: PackagePin, arch: Arch) -> ArchiveEntry | None:
        best: ArchiveEntry | None = None
        waiting = self._waiting(arch, UPDATE_WAIT)
        for name in self._apt.names_matching(pin.same_series_pattern(), waiting):
            for entry in self._apt.show(name, arch.debian, waiting):
                if (
                    best is None
                    or _abi(entry.package) > _abi(best.package)
                    or (_abi(entry.package) == _abi(best.package) and version_newer(entry.version, best.version))
                ):
                    best = entry
        return best

    def _download_verified(self, entry: ArchiveEntry, deb: Path, arch: Arch) -> None:
        """Download into a directory of this process's own, check the sha256, rename into place."""
        staging_root = self.root / "downloads"
        staging_root.mkdir(parents=True, exist_ok=True)
        remove_abandoned_downloads(staging_root)
        staging = Path(tempfile.mkdtemp(dir=staging_root, prefix=f"{os.getpid()}-"))
        try:
            fetched = self._apt.download(entry, staging, self._waiting(arch, UPDATE_WAIT))
            actual = sha256_file(fetched)
            if actual != entry.sha256:
                raise AssetError(f"{fetched.name}: sha256 {actual} does not match {entry.sha256}; download discarded")
            deb.parent.mkdir(parents=True, exist_ok=True)
            os.replace(fetched, deb)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- unpacking and building ----------------------------------------------------

    def _unpack_kernel(self, deb: Path, resolved: Resolved, arch: Arch) -> tuple[Path, list[tuple[str, bytes]]]:
        roots_key = hashlib.sha256("\n".join(self.pins.modules).encode()).hexdigest()[:16]
        base = self.root / "kernels" / resolved.sha256
        vmlinuz, mod_dir = base / "vmlinuz", base / f"modules-{roots_key}"
        order_file = mod_dir / "order"
        if not (vmlinuz.is_file() and order_file.is_file()):
            with self._locked(f"kernel-{resolved.sha256}-{roots_key}", arch, f"unpacking {resolved.what}"):
                if not (vmlinuz.is_file() and order_file.is_file()):
                    self._unpack_kernel_now(deb, vmlinuz, mod_dir)
        names = order_file.read_text().split()
        return vmlinuz, [(name, (mod_dir / name).read_bytes()) for name in names]

    def _unpack_kernel_now(self, deb: Path, vmlinuz: Path, mod_dir: Path) -> None:
        files = extract_matching(
            deb,
            lambda p: (
                p.startswith("boot/vmlinuz-")
                or (p.startswith("lib/modules/") and (".ko" in p or p.endswith("modules.builtin")))
            ),
        )
        images = [p for p in files if p.startswith("boot/vmlinuz-")]
        if len(images) != 1:
            raise AssetError(f"{deb}: expected one boot/vmlinuz-*, found {len(images)}")
        builtin = {
            kmod.canonical(line)
            for p, data in files.items()
            if p.endswith("modules.builtin")
            for line in data.decode().split()
        }
        available = {}
        for path, data in files.items():
            if ".ko" in path:
                module = _parse_module_or_fail(path, data)
                available[module.name] = module
        roots = [r for r in self.pins.modules if kmod.canonical(r) not in builtin]
        missing = [r for r in roots if kmod.canonical(r) not in available]
        if missing:
            raise AssetError(f"{deb}: modules {', '.join(missing)} are neither in the package nor built in")
        ordered = _order_or_fail(roots, available, str(deb))
        for module in ordered:
            write_atomic(mod_dir / f"{module.name}.ko", module.data)
        write_atomic(mod_dir / "order", "".join(f"{m.name}.ko\n" for m in ordered).encode())
        write_atomic(vmlinuz, files[images[0]])

    def _modules_from_dir(self, directory: Path | None) -> list[tuple[str, bytes]]:
        """Modules for a kernel given by path: the pinned module list and what
        it depends on, from ``directory`` (searched recursively, e.g. a whole
        lib/modules tree; missing roots count as built in).  Only the modules
        needed are read."""
        if directory is None:
            return []  # a supplied kernel without modules: drivers must be built in
        if not directory.is_dir():
            raise AssetError(f"modules directory {directory} does not exist")
        index = {kmod.canonical(path.name): path for path in sorted(directory.rglob("*.ko*"))}
        available = _LazyModules(index)
        roots = [r for r in self.pins.modules if kmod.canonical(r) in index]
        return [(f"{m.name}.ko", m.data) for m in _order_or_fail(roots, available, str(directory))]

    def _initramfs(self, busybox: bytes, modules: list[tuple[str, bytes]], arch: Arch) -> Path:
        entries = initramfs_entries(busybox, modules)
        digest = hashlib.sha256(str(INITRAMFS_FORMAT).encode())
        for entry in entries:
            digest.update(f"{entry.path}\0{entry.mode}\0{len(entry.data)}\0".encode())
            digest.update(entry.data)
        target = self.root / "initramfs" / f"{digest.hexdigest()}.cpio"
        if not target.is_file():
            with self._locked(f"initramfs-{digest.hexdigest()}", arch, "building the initramfs"):
                if not target.is_file():
                    buffer = io.BytesIO()
                    cpio.write_newc(buffer, entries)
                    write_atomic(target, buffer.getvalue())
        return target


class _LazyModules(dict):
    """Modules by name, read from disk the first time one is asked for."""

    def __init__(self, index: dict[str, Path]) -> None:
        super().__init__()
        self._index = index

    def __missing__(self, name: str) -> kmod.Module:
        path = self._index.get(name)
        if path is None:
            raise KeyError(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise AssetError(f"{path}: cannot read ({exc.strerror})") from None
        module = _parse_module_or_fail(str(path), data)
        self[name] = module
        return module


def remove_abandoned_downloads(staging_root: Path) -> None:
    """Remove the download directories of runs that died (named PID-…); nothing in them is trusted."""
    for leftover in staging_root.iterdir():
        pid = leftover.name.partition("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _parse_module_or_fail(path: str, data: bytes) -> kmod.Module:
    try:
        return kmod.parse_module(path, data)
    except (ValueError, lzma.LZMAError, IndexError, struct.error) as exc:
        raise AssetError(f"{path}: not a usable kernel module ({exc})") from None


def _order_or_fail(roots: list[str], available: dict[str, kmod.Module], where: str) -> list[kmod.Module]:
    try:
        return kmod.load_order(roots, available)
    except KeyError as exc:
        raise AssetError(f"{where}: module {exc.args[0]} is needed but missing") from None
    except ValueError as exc:
        raise AssetError(f"{where}: {exc}") from None


def _abi(package: str) -> int:
    """The ABI number of a kernel package name (linux-image-6.1.0-47-amd64 -> 47)."""
    parts = package.split("-")
    return int(parts[3]) if len(parts) > 4 and parts[3].isdigit() else 0


def guest_file(name: str) -> bytes:
    return resources.files("ccvm.guest").joinpath(name).read_bytes()


def initramfs_entries(busybox: bytes, modules: list[tuple[str, bytes]]) -> list[cpio.Entry]:
    entries = [
        cpio.Entry.directory(d)
        for d in (
            "bin",
            "dev",
            "etc",
            "etc/ccvm",
            "lib",
            "lib/modules",
            "proc",
            "sys",
            "tmp",
            "run",
            "mnt",
            "root",
            "ccvm",
        )
    ]
    entries += [
        cpio.Entry.file("bin/busybox", busybox, 0o755),
        cpio.Entry.symlink("bin/sh", "busybox"),
        cpio.Entry.file("init", guest_file("init.sh"), 0o755),
        cpio.Entry.file("bin/ccvm-stub", guest_file("stub.sh"), 0o755),
        cpio.Entry.file("etc/ccvm/modules", "".join(f"{name}\n" for name, _ in modules).encode()),
    ]
    entries += [cpio.Entry.file(f"lib/modules/{name}", data) for name, data in modules]
    return entries
