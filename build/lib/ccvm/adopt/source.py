"""Where an adopted project's workflow installs ccvm from: guessed from how
this ccvm is installed, as pip recorded it (PEP 610 ``direct_url.json`` in
the installed ``ccvm`` distribution).

- a VCS URL with its commit: ``ccvm @ git+URL@COMMIT`` (the very commit);
- an https archive: ``ccvm @ URL``;
- a local directory, an editable install, a file: URL or no record at all:
  nothing a GitHub runner can install, so a placeholder (``{unset: WHY}``)
  under which the workflow fails with that reason until it is set;
- otherwise (from a package index): ``ccvm==VERSION``, which only works
  where that index is the runner's too (there is no ccvm on PyPI).

The result is matrix/actions.yaml's ``ccvm_pip``, and the guess ``ccvm
init`` prints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata

from ccvm.matrix.actions import CCVM_PIP_EXAMPLES

WHAT_TO_CHANGE = f"set ccvm_pip in matrix/actions.yaml ({CCVM_PIP_EXAMPLES}), then run ccvm generate"


@dataclass(frozen=True, kw_only=True)
class PipGuess:
    requirement: str  # "" when nothing this machine knows can be installed on GitHub
    unset: str  # why, when requirement is ""
    note: str  # what init prints after "guessed: "


def _unset(why: str) -> PipGuess:
    return PipGuess(
        requirement="",
        unset=why,
        note=f"ccvm_pip: not set, the workflow fails until it is: {why}; {WHAT_TO_CHANGE}",
    )


def _found(requirement: str, how: str, change: str = WHAT_TO_CHANGE) -> PipGuess:
    return PipGuess(requirement=requirement, unset="", note=f"ccvm_pip: {requirement} ({how}); to change it, {change}")


def _from_direct_url(record: dict[str, object], version: str) -> PipGuess:
    url = str(record.get("url", ""))
    subdirectory = record.get("subdirectory")
    suffix = f"#subdirectory={subdirectory}" if subdirectory else ""
    dir_info = record.get("dir_info")
    if isinstance(dir_info, dict) or url.startswith("file:"):
        editable = isinstance(dir_info, dict) and dir_info.get("editable")
        where = "an editable install of" if editable else "installed from"
        return _unset(f"this ccvm is {where} {url}, which a GitHub runner cannot install")
    vcs = record.get("vcs_info")
    if isinstance(vcs, dict):
        commit = vcs.get("commit_id")
        if not commit:
            return _unset(f"this ccvm came from {url} with no commit recorded")
        return _found(
            f"ccvm @ {vcs.get('vcs', 'git')}+{url}@{commit}{suffix}", "the commit this ccvm was installed from"
        )
    if url.startswith("https://"):
        return _found(f"ccvm @ {url}{suffix}", "the archive this ccvm was installed from")
    return _unset(f"this ccvm {version} was installed from {url or 'an unrecorded place'}")


def guess(distribution: metadata.Distribution | None = None) -> PipGuess:
    """ccvm_pip for the installed ccvm (or the given distribution)."""
    try:
        dist = distribution or metadata.distribution("ccvm")
    except metadata.PackageNotFoundError:
        return _unset("this ccvm is not an installed distribution (run from a source tree)")
    text = dist.read_text("direct_url.json")
    if text is None:
        return _found(
            f"ccvm=={dist.version}",
            "this ccvm's version, installed from a package index",
            f"make sure the runner's pip can reach that index (there is no ccvm on PyPI), or {WHAT_TO_CHANGE}",
        )
    try:
        record = json.loads(text)
    except ValueError:
        return _unset("this ccvm's direct_url.json cannot be read")
    return _from_direct_url(record if isinstance(record, dict) else {}, dist.version)
