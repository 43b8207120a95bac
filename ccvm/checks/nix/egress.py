"""Egress preflight: fail in seconds, naming the host, when a build still
needs a download from a host this machine cannot reach.

Without it Nix retries a blocked fixed-output fetch for minutes before
saying "cannot download … from any mirror".  Before a build we ask Nix
which derivations it would build (``nix build --dry-run``: substitutable
paths are not listed), keep the fixed-output ones, and open a TCP
connection to each of their URLs' hosts with a short timeout.  A fetch is
blocked when none of its URLs can be reached.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from ccvm.nixtool import QUERY_TIMEOUT_S, Nix, error_summary, needs_newer_nix, store_name

CONNECT_TIMEOUT_S = 3.0
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "git": 9418, "ssh": 22}
URL_KEYS = ("url", "urls")  # builtin:fetchurl and nixpkgs' fetchers

_WILL_BUILD = re.compile(r"^these \d+ derivations? will be built:$|^this derivation will be built:$")


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class Fetch:
    drv: str
    urls: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Blocked:
    fetch: Fetch
    reasons: tuple[str, ...]  # one per URL: "host:port: connection refused"
    hosts: tuple[str, ...]

    @property
    def message(self) -> str:
        hosts = ", ".join(self.hosts)
        return (
            f"egress blocked: {store_name(self.fetch.drv)} must be downloaded from {hosts}, which cannot be "
            f"reached ({'; '.join(self.reasons)}); add {hosts} to the egress allowlist"
        )


@dataclass(frozen=True, kw_only=True)
class Preflight:
    blocked: tuple[Blocked, ...] = ()
    eval_error: str = ""  # the dry run failed: the installable does not evaluate, or (timed_out) it took too long
    eval_details: str = ""
    timed_out: bool = False  # the dry run was stopped at its timeout: slow, not broken
    nix_too_old: bool = False  # eval_error says this Nix is too old (for nixpkgs, or for the flake.lock)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.blocked and not self.eval_error

    @property
    def message(self) -> str:
        """Why the preflight failed, in one line; '' when it passed."""
        if self.timed_out or self.nix_too_old:
            return self.eval_error
        if self.eval_error:
            return f"does not evaluate: {self.eval_error}"
        return self.blocked[0].message if self.blocked else ""


def endpoint(url: str) -> Endpoint | None:
    """Where a URL connects to; None for schemes with no network host (file:, mirror:)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower().split("+")[-1]  # git+https -> https
    if not parts.hostname or scheme not in DEFAULT_PORTS:
        return None
    return Endpoint(host=parts.hostname, port=port or DEFAULT_PORTS[scheme])


def resolve(point: Endpoint, timeout_s: float) -> list[tuple]:
    """getaddrinfo bounded by a timeout (it has none of its own): TimeoutError when the resolver is slower.

    The lookup runs on a daemon thread, which is left to finish on its own when it overruns.
    """
    addresses: list[tuple] = []
    errors: list[OSError] = []

    def look_up() -> None:
        try:
            addresses.extend(socket.getaddrinfo(point.host, point.port, type=socket.SOCK_STREAM))
        except OSError as exc:
            errors.append(exc)

    thread = threading.Thread(target=look_up, name=f"resolve {point.host}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"name lookup took more than {timeout_s:g}s")
    if errors:
        raise errors[0]
    return addresses


def unreachable_reason(point: Endpoint, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when a TCP connection opens within the timeout, else why not.

    The timeout bounds the whole probe: the name lookup and the connection
    attempts to every address it gave, one after another.
    """
    deadline = time.monotonic() + timeout_s
    try:
        addresses = resolve(point, timeout_s)
    except TimeoutError:
        return f"{point}: name did not resolve within {timeout_s:g}s"
    except socket.gaierror as exc:
        return f"{point}: name does not resolve ({exc.strerror or exc})"
    except OSError as exc:
        return f"{point}: {(exc.strerror or str(exc)).lower()}"
    reason = f"{point}: name resolved to no address"
    for family, kind, proto, _name, address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            return f"{point}: no answer within {timeout_s:g}s"
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(left)
                sock.connect(address)
                return None
        except TimeoutError:
            reason = f"{point}: no answer within {timeout_s:g}s"
        except OSError as exc:
            reason = f"{point}: {(exc.strerror or str(exc)).lower()}"
    return reason


def derivations_to_build(dry_run_stderr: str) -> list[str]:
    """The .drv paths under Nix's 'these N derivations will be built:' heading."""
    found, listing = [], False
    for line in dry_run_stderr.splitlines():
        if _WILL_BUILD.match(line.strip()):
            listing = True
        elif listing and line.startswith("  ") and line.strip().endswith(".drv"):
            found.append(line.strip())
        else:
            listing = False
    return found


def fixed_output_fetches(derivations: dict) -> list[Fetch]:
    """From `nix show-derivation` JSON: fixed-output derivations and their URLs."""
    fetches = []
    for drv, info in derivations.items():
        outputs = info.get("outputs", {})
        if not any("hash" in out for out in outputs.values()):
            continue
        env = info.get("env", {})
        urls = tuple(url for key in URL_KEYS for url in str(env.get(key, "")).split())
        if urls:
            fetches.append(Fetch(drv=drv, urls=urls))
    return fetches


def check_fetch(fetch: Fetch, timeout_s: float = CONNECT_TIMEOUT_S) -> Blocked | None:
    """Blocked when no URL of the fetch can be reached; None when one can,
    or when no URL names a network host (nothing to check)."""
    points = list(dict.fromkeys(p for p in map(endpoint, fetch.urls) if p is not None))
    if not points:
        return None
    reasons = []
    for point in points:
        reason = unreachable_reason(point, timeout_s)
        if reason is None:
            return None
        reasons.append(reason)
    return Blocked(fetch=fetch, reasons=tuple(reasons), hosts=tuple(dict.fromkeys(p.host for p in points)))


def preflight(
    nix: Nix,
    installable: str,
    timeout_s: float = CONNECT_TIMEOUT_S,
    *,
    probe: bool = True,
    eval_timeout_s: float = QUERY_TIMEOUT_S,
) -> Preflight:
    """Dry-run the build, then try the hosts of the fixed-output fetches it still needs.

    ``installable`` is a flake installable or a /nix/store/….drv path.  With
    ``probe=False`` only the dry run happens: it still catches evaluation errors.
    ``eval_timeout_s`` bounds the dry run: give it the command's own timeout,
    since evaluating on a cold machine may first fetch nixpkgs.
    """
    started = time.monotonic()
    if installable.startswith("/") and installable.endswith(".drv"):
        what = "nix-store --realise --dry-run"
        dry = nix.run_store("--realise", "--dry-run", installable, timeout_s=eval_timeout_s)
    else:
        what = "nix build --dry-run"
        dry = nix.run("build", "--dry-run", "--no-link", installable, timeout_s=eval_timeout_s)
    if not dry.ok and dry.returncode is not None:
        # the real error, not a cached one
        dry = nix.run_uncached("build", "--dry-run", "--no-link", installable, timeout_s=eval_timeout_s)
    if dry.returncode is None:
        return Preflight(
            eval_error=f"{what} timed out after {eval_timeout_s:g}s (evaluating {installable}, "
            "or fetching what its evaluation needs) and was stopped",
            eval_details=dry.stderr,
            timed_out=True,
            seconds=time.monotonic() - started,
        )
    if not dry.ok:
        too_old = needs_newer_nix(nix.version, dry.stderr)
        return Preflight(
            eval_error=too_old or error_summary(dry.stderr) or "nix build --dry-run failed",
            eval_details=dry.stderr,
            nix_too_old=too_old is not None,
            seconds=time.monotonic() - started,
        )
    pending = derivations_to_build(dry.stderr)
    blocked: list[Blocked] = []
    if pending and probe:
        shown = nix.run("show-derivation", *pending, timeout_s=eval_timeout_s)
        try:
            derivations = json.loads(shown.stdout) if shown.ok else {}
        except json.JSONDecodeError:
            derivations = {}
        for fetch in fixed_output_fetches(derivations):
            result = check_fetch(fetch, timeout_s)
            if result is not None:
                blocked.append(result)
    return Preflight(blocked=tuple(blocked), seconds=time.monotonic() - started)
