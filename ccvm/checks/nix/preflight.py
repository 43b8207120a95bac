"""Nix preflight: the broken set-ups people meet, found before nix runs.

Each problem is one line saying what is wrong and the command that fixes
it; ``ccvm build`` and ``ccvm flake-check`` raise the first as a HostError
(exit status 3) instead of failing one testcase per attribute, and
``ccvm doctor`` prints them all.

- build users: Nix running as root on its local store builds as the
  members of ``build-users-group``; a group that does not exist, or has
  no members, fails every build.
- features: ccvm passes ``--extra-experimental-features 'nix-command
  flakes'`` itself; a configuration that breaks them stops everything.
- store: a user who cannot write the store, with no nix-daemon to go
  through, cannot build anything.

The decisions (``store_problems``) are pure functions of ``StoreFacts``,
so they can be tested with facts a test cannot create (an unprivileged
user, a read-only store).
"""

from __future__ import annotations

import grp
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ccvm.errors import HostError
from ccvm.nixtool import CONFIG_HINT, FEATURE_FLAGS, Nix, setting, show_config
from ccvm.processes import run
from ccvm.text import first_line

SETUP_HINT = "bash .ci/setup"
BUILD_USER_COUNT = 32
START_DAEMON = f"{SETUP_HINT}, or sudo systemctl start nix-daemon.socket (systemd), or sudo nix-daemon & (no systemd)"
FLAKES_PROBE = "builtins ? getFlake"  # true only when the flakes feature is on
WANTED_FEATURES = ("nix-command", "flakes")


@dataclass(frozen=True, kw_only=True)
class StoreFacts:
    """What decides whether this process can build with Nix here."""

    euid: int
    store: str  # the `store` setting: auto, local, daemon, unix://…, ssh://…
    store_dir: str
    state_dir: str
    socket: str
    store_dir_writable: bool
    state_dir_writable: bool
    socket_exists: bool
    build_users_group: str
    group_members: tuple[str, ...] | None  # None: no such group


def _uses_daemon(store: str) -> bool:
    return store == "daemon" or store.startswith("unix://")


def _uses_local(store: str) -> bool:
    return store in ("local", "") or store.startswith(("local?", "/"))


def store_mode(facts: StoreFacts) -> str:
    """'local', 'daemon' or 'other' (a remote store ccvm does not look into), as Nix picks it."""
    if _uses_daemon(facts.store):
        return "daemon"
    if _uses_local(facts.store):
        return "local"
    if facts.store == "auto":
        if facts.state_dir_writable or not facts.socket_exists:
            return "local"
        return "daemon"
    return "other"


def _build_users_command(group: str, create_group: bool) -> str:
    users = (
        f"for i in $(seq 1 {BUILD_USER_COUNT}); do useradd --system --no-create-home --shell /usr/sbin/nologin "
        f"--gid {group} --groups {group} {group}$i; done"
    )
    command = f"groupadd --system {group} && {users}" if create_group else users
    return f"{SETUP_HINT} (creates nixbld and its users), or: {command}" if group == "nixbld" else command


def build_users_problem(facts: StoreFacts) -> str | None:
    group = facts.build_users_group
    if facts.euid != 0 or not group or store_mode(facts) != "local":
        return None  # build users are used only by a root process on its local store
    if facts.group_members is None:
        return (
            f"nix build-users-group '{group}' does not exist, and nix as root builds as its members; "
            f"create them: {_build_users_command(group, create_group=True)}"
        )
    if not facts.group_members:
        return (
            f"nix build-users-group '{group}' has no members, and nix as root builds as its members; "
            f"add them: {_build_users_command(group, create_group=False)}"
        )
    return None


def _unwritable(facts: StoreFacts) -> str:
    pairs = ((facts.store_dir, facts.store_dir_writable), (facts.state_dir, facts.state_dir_writable))
    return " and ".join(path for path, writable in pairs if not writable)


def writable_store_problem(facts: StoreFacts) -> str | None:
    mode = store_mode(facts)
    if mode == "daemon" and not facts.socket_exists:
        return (
            f"nix is set to build through the nix-daemon (store = {facts.store}) but nothing listens on "
            f"{facts.socket}; start one: {START_DAEMON}"
        )
    if mode != "local" or (facts.store_dir_writable and facts.state_dir_writable):
        return None
    if facts.socket_exists:
        return (
            f"this user (uid {facts.euid}) cannot write {_unwritable(facts)} and nix is set to use the store "
            f"directly (store = {facts.store}); build through the daemon: export NIX_REMOTE=daemon"
        )
    return (
        f"this user (uid {facts.euid}) cannot write {_unwritable(facts)} and no nix-daemon listens on "
        f"{facts.socket}; start one: {START_DAEMON}"
    )


def store_problems(facts: StoreFacts) -> list[str]:
    """Every store-side problem, most basic first (a store that cannot be written hides the rest)."""
    writable = writable_store_problem(facts)
    if writable is not None:
        return [writable]
    users = build_users_problem(facts)
    return [users] if users else []


def _writable(path: Path) -> bool:
    """Whether this process may write ``path``, or create it (its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return os.access(path, os.W_OK)


def _members(group: str) -> tuple[str, ...] | None:
    try:
        return tuple(grp.getgrnam(group).gr_mem)
    except KeyError:
        return None


def gather_facts(config: dict) -> StoreFacts:
    """The facts, from ``nix show-config --json`` and this process's view of the file system."""
    store_dir = os.environ.get("NIX_STORE_DIR") or os.environ.get("NIX_STORE") or "/nix/store"
    state_dir = os.environ.get("NIX_STATE_DIR") or "/nix/var/nix"
    socket = os.environ.get("NIX_DAEMON_SOCKET_PATH") or f"{state_dir}/daemon-socket/socket"
    group = str(setting(config, "build-users-group") or "")
    return StoreFacts(
        euid=os.geteuid(),
        store=str(setting(config, "store") or "auto"),
        store_dir=store_dir,
        state_dir=state_dir,
        socket=socket,
        store_dir_writable=_writable(Path(store_dir)),
        state_dir_writable=_writable(Path(state_dir)),
        socket_exists=Path(socket).is_socket(),
        build_users_group=group,
        group_members=_members(group) if group else (),
    )


def features_problem(nix: Nix) -> str | None:
    """None when this nix, with the flags ccvm passes, has nix-command and flakes."""
    result = nix.run("eval", "--json", "--expr", FLAKES_PROBE)
    flags = " ".join(FEATURE_FLAGS[:1]) + f" '{FEATURE_FLAGS[1]}'"
    if not result.ok:
        why = first_line(result.stderr) or f"exit status {result.returncode}"
        return f"nix does not accept {flags}: {why}; fix the configuration ({CONFIG_HINT})"
    try:
        enabled = json.loads(result.stdout) is True
    except json.JSONDecodeError:
        enabled = False
    if not enabled:
        return f"nix with {flags} still has no flakes (builtins.getFlake is missing); use Nix 2.4 or newer"
    return None


def problems(nix: Nix) -> list[str]:
    """Every problem found, one line each; empty when this nix can build here."""
    found = store_problems(gather_facts(show_config(nix)))
    if found:
        return found  # evaluating needs the store: the feature check would only repeat it
    feature = features_problem(nix)
    return [feature] if feature else []


def require_usable(nix: Nix) -> None:
    """Raise the first problem as a HostError (exit status 3)."""
    found = problems(nix)
    if found:
        raise HostError(found[0])


def own_config_features(nix: Nix) -> tuple[str, ...]:
    """The experimental features the user's own configuration enables (for their own `nix build`)."""
    result = run([nix.path, "show-config"], timeout_s=60)
    if not result.ok:
        return ()  # nix-command itself is off: `nix show-config` is refused
    for line in result.stdout.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "experimental-features":
            return tuple(value.split())
    return ()


def own_config_note(nix: Nix) -> str:
    enabled = own_config_features(nix)
    missing = [f for f in WANTED_FEATURES if f not in enabled]
    if not missing:
        return "your nix configuration enables nix-command and flakes"
    return (
        f"your nix configuration does not enable {' '.join(missing)} (ccvm passes them itself); for your own "
        "nix build add: experimental-features = nix-command flakes (to ~/.config/nix/nix.conf)"
    )
