"""The files a GitHub runner gives each step ($GITHUB_ENV, $GITHUB_OUTPUT,
$GITHUB_PATH, $GITHUB_STEP_SUMMARY) and how it reads them back."""

from __future__ import annotations

import re
from pathlib import Path

_HEREDOC = re.compile(r"^([^=<\s]+)<<(.+)$")


def read_assignments(path: Path) -> dict[str, str]:
    """NAME=value lines and NAME<<DELIMITER blocks, as $GITHUB_ENV and $GITHUB_OUTPUT hold them."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return {}
    found: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        heredoc = _HEREDOC.match(line)
        if heredoc:
            name, delimiter = heredoc.group(1), heredoc.group(2)
            body: list[str] = []
            while index < len(lines) and lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            index += 1  # the delimiter
            found[name] = "\n".join(body)
        elif "=" in line:
            name, _, value = line.partition("=")
            found[name] = value
    return found


def read_paths(path: Path) -> list[str]:
    """$GITHUB_PATH: one directory a line, the last added first on PATH."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    return [line.strip() for line in reversed(lines) if line.strip()]


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
