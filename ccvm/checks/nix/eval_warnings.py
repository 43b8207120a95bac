"""Evaluation warnings in Nix's output, told apart from the noise around them.

`nix flake check` must be warning-clean: each evaluation warning is a
finding of its own.  What counts, as Nix 2.8 to 2.2x print it:

- ``warning: unknown flake output 'NAME'``;
- ``warning: flake output attribute 'NAME' is deprecated; use '...' instead``;
- ``evaluation warning: MESSAGE`` (``builtins.warn``, Nix 2.23 and newer,
  which nixpkgs' ``lib.warn`` uses there: deprecated aliases, renamed options);
- ``trace: evaluation warning: MESSAGE`` and ``trace: warning: MESSAGE``
  (``lib.warn`` on an older Nix, through ``builtins.trace``; ANSI colours removed);
- any other ``warning:`` line that is not one of the notices below.

What does not count:

- offline noise: a substituter (binary cache) or a download Nix cannot reach
  (``unable to download 'https://cache.nixos.org/nix-cache-info': ...``,
  ``you don't have Internet access``), named with its host and counted apart;
- notices about this machine or this run, not about the flake's code: a dirty
  git tree, a lock file not written, the systems `nix flake check` omitted,
  settings or substituters ignored for an untrusted user, a busy database,
  a full download buffer;
- a plain ``trace:`` line (``builtins.trace`` for debugging): listed, not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ccvm.text import strip_ansi

UNKNOWN_OUTPUT = "unknown flake output"
DEPRECATED_OUTPUT = "deprecated flake output"
EVALUATION = "evaluation warning"
TRACE = "trace warning"
OTHER = "warning"

_COUNTED = (
    (re.compile(r"^warning: unknown flake output '([^']+)'"), UNKNOWN_OUTPUT),
    (re.compile(r"^warning: flake output attribute '([^']+)' is deprecated"), DEPRECATED_OUTPUT),
    (re.compile(r"^evaluation warning:\s*(.*)"), EVALUATION),
    (re.compile(r"^trace: (?:evaluation )?warning:\s*(.*)"), TRACE),
)
_DOWNLOAD = re.compile(r"unable to download '([^']+)'")
_OFFLINE = re.compile(r"you don't have Internet access|unable to download '|cannot connect to|Couldn't resolve host")
_NOTICES = re.compile(
    r"Git tree '.*' (?:is dirty|has uncommitted changes)"
    r"|not writing modified lock file"
    r"|The check omitted these incompatible systems"
    r"|ignoring (?:the client-specified setting|untrusted substituter|untrusted flake configuration setting"
    r"|substitute for)"
    r"|is not owned by you"
    r"|SQLite database .* is busy"
    r"|build-users-group"
    r"|download buffer is full"
)
_CACHE_FILE = re.compile(r"(?:/nix-cache-info|\.narinfo|/nar/[^/]+)$")


@dataclass(frozen=True, kw_only=True)
class EvalWarning:
    kind: str  # one of UNKNOWN_OUTPUT, DEPRECATED_OUTPUT, EVALUATION, TRACE, OTHER
    text: str  # the warning as Nix printed it, without colours (its first line)
    subject: str  # the output name, or the message
    count: int = 1  # how often Nix printed it (once per system, say)


@dataclass(kw_only=True)
class Sorted:
    """Nix's stderr, sorted: what counts, and what is named but not counted."""

    warnings: list[EvalWarning] = field(default_factory=list)
    offline: dict[str, int] = field(default_factory=dict)  # "cache URL unreachable" -> lines
    notices: list[str] = field(default_factory=list)  # about the machine or the run, or a plain trace

    def offline_summary(self) -> str:
        """One line naming the offline noise; '' when there was none."""
        if not self.offline:
            return ""
        parts = [f"{what} ({lines} line{'s' if lines != 1 else ''})" for what, lines in self.offline.items()]
        return "offline noise, not counted as warnings: " + "; ".join(parts)


def _offline_what(line: str) -> str:
    download = _DOWNLOAD.search(line)
    if not download:
        return "no network access"
    url = download.group(1)
    parts = urlsplit(url)
    if _CACHE_FILE.search(parts.path):
        return f"substituter {parts.scheme}://{parts.netloc} unreachable"
    return f"download from {parts.netloc or url} unreachable"


def _counted(line: str) -> EvalWarning | None:
    for pattern, kind in _COUNTED:
        match = pattern.match(line)
        if match:
            return EvalWarning(kind=kind, text=line, subject=match.group(1).strip() or line)
    if line.startswith("warning:"):
        return EvalWarning(kind=OTHER, text=line, subject=line.removeprefix("warning:").strip())
    return None


def sort_output(stderr: str) -> Sorted:
    """Every warning line of Nix's stderr, sorted; repeated warnings are counted once (with their count)."""
    found = Sorted()
    seen: dict[str, int] = {}
    for raw in stderr.splitlines():
        line = strip_ansi(raw).strip()
        if not line.startswith(("warning:", "evaluation warning:", "trace:")):
            continue
        if line.startswith("warning:") and _OFFLINE.search(line):
            what = _offline_what(line)
            found.offline[what] = found.offline.get(what, 0) + 1
            continue
        if _NOTICES.search(line) or (line.startswith("trace:") and not _counted(line)):
            if line not in found.notices:
                found.notices.append(line)
            continue
        warning = _counted(line)
        if warning is None:
            continue
        if warning.text in seen:
            index = seen[warning.text]
            old = found.warnings[index]
            found.warnings[index] = EvalWarning(kind=old.kind, text=old.text, subject=old.subject, count=old.count + 1)
        else:
            seen[warning.text] = len(found.warnings)
            found.warnings.append(warning)
    return found


SLUG_LENGTH = 60
_SLUG_PREFIX = {UNKNOWN_OUTPUT: "unknown-output ", DEPRECATED_OUTPUT: "deprecated-output "}


def slug(warning: EvalWarning) -> str:
    """A short name for a warning's JUnit suite, in [a-z0-9-]: the same for the same warning whether
    Nix printed it through builtins.warn or through a trace (a newer or an older Nix)."""
    words = re.sub(r"[^a-z0-9]+", "-", f"{_SLUG_PREFIX.get(warning.kind, '')}{warning.subject}".lower()).strip("-")
    return words if len(words) <= SLUG_LENGTH else words[: SLUG_LENGTH + 1].rsplit("-", 1)[0]
