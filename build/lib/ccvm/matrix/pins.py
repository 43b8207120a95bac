"""Pins of the embedded default guest's Debian packages (matrix/guest.yaml)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ccvm.errors import ConfigError
from ccvm.matrix.axes import Arch, parse_axis_value, suggestion
from ccvm.matrix.yamlsrc import Mapping, expect_mapping, expect_sequence


class PinPolicy(enum.StrEnum):
    STRICT = "strict"  # a pinned version gone from the archive is an error
    NEWEST = "newest"  # take the newest package of the same series and flavour


@dataclass(frozen=True, kw_only=True)
class PackagePin:
    package: str
    version: str
    sha256: str

    def same_series_pattern(self) -> re.Pattern[str]:
        """Package names that may replace this one under the newest policy.

        ``linux-image-6.1.0-47-amd64`` may be replaced by any
        ``linux-image-6.1.0-N-amd64`` (same series, same flavour); other
        packages only by newer versions of the same name.
        """
        match = re.fullmatch(r"(linux-image-\d+\.\d+\.\d+-)\d+(-[a-z0-9]+)", self.package)
        if match:
            return re.compile(re.escape(match.group(1)) + r"\d+" + re.escape(match.group(2)))
        return re.compile(re.escape(self.package))


@dataclass(frozen=True, kw_only=True)
class ArchPins:
    kernel: PackagePin
    busybox: PackagePin


@dataclass(frozen=True, kw_only=True)
class Archive:
    """The Debian archive the pins come from, independent of the host's apt
    sources (so a Debian 13 or Ubuntu host fetches the same packages)."""

    uri: str
    suite: str
    components: tuple[str, ...]
    keyring: str

    def sources_line(self, debian_archs: list[str]) -> str:
        return (
            f"deb [arch={','.join(debian_archs)} signed-by={self.keyring}] "
            f"{self.uri} {self.suite} {' '.join(self.components)}\n"
        )


@dataclass(frozen=True, kw_only=True)
class GuestPins:
    policy: PinPolicy
    modules: tuple[str, ...]
    archs: dict[Arch, ArchPins]
    archive: Archive | None = None  # None: the host's own apt sources


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _parse_pin(value: object, parent: Mapping, key: str) -> PackagePin:
    pin = expect_mapping(value, parent.path, parent.line_of(key), key)
    pin.reject_unknown_keys(["package", "version", "sha256"], key)
    for field in ("package", "version", "sha256"):
        if field not in pin:
            raise pin.error(None, f"{key} is missing {field!r}")
    sha = str(pin["sha256"]).lower()
    if not _SHA256.fullmatch(sha):
        raise pin.error("sha256", "sha256 must be 64 hexadecimal digits")
    for field in ("package", "version"):
        if not isinstance(pin[field], str):
            raise pin.error(field, f"{field} must be text; quote it (YAML read {pin[field]!r})")
    return PackagePin(package=pin["package"], version=pin["version"], sha256=sha)


def _parse_archive(doc: Mapping) -> Archive | None:
    if "archive" not in doc:
        return None
    archive = expect_mapping(doc["archive"], doc.path, doc.line_of("archive"), "archive")
    fields = ["uri", "suite", "components", "keyring"]
    archive.reject_unknown_keys(fields, "archive")
    for field in fields:
        if field not in archive:
            raise archive.error(None, f"archive is missing {field!r}")
    components = expect_sequence(archive["components"], archive.path, archive.line_of("components"), "components")
    return Archive(
        uri=str(archive["uri"]),
        suite=str(archive["suite"]),
        components=tuple(str(c) for c in components),
        keyring=str(archive["keyring"]),
    )


def parse_guest(doc: Mapping) -> GuestPins:
    doc.reject_unknown_keys(["policy", "modules", "packages", "archive"], "guest.yaml")
    raw_policy = str(doc.get("policy", "strict"))
    try:
        policy = PinPolicy(raw_policy)
    except ValueError:
        choices = [p.value for p in PinPolicy]
        raise doc.error(
            "policy", f"unknown policy {raw_policy!r}{suggestion(raw_policy, choices)}; choose strict or newest"
        ) from None
    modules = expect_sequence(doc["modules"], doc.path, doc.line_of("modules"), "modules") if "modules" in doc else []
    packages = expect_mapping(doc.get("packages"), doc.path, doc.line_of("packages"), "packages")
    archs = {}
    for raw_arch, value in packages.items():
        try:
            arch = parse_axis_value("arch", raw_arch)
        except ValueError as exc:
            raise packages.error(raw_arch, str(exc)) from None
        entry = expect_mapping(value, packages.path, packages.line_of(raw_arch), raw_arch)
        entry.reject_unknown_keys(["kernel", "busybox"], f"packages.{raw_arch}")
        for needed in ("kernel", "busybox"):
            if needed not in entry:
                raise entry.error(None, f"packages.{raw_arch} is missing {needed!r}")
        archs[arch] = ArchPins(
            kernel=_parse_pin(entry["kernel"], entry, "kernel"),
            busybox=_parse_pin(entry["busybox"], entry, "busybox"),
        )
    if not archs:
        raise ConfigError(doc.path, doc.line_of("packages"), "packages must pin at least one arch")
    return GuestPins(policy=policy, modules=tuple(str(m) for m in modules), archs=archs, archive=_parse_archive(doc))
