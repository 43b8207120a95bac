"""Text helpers shared by every part: one-line summaries of command output
and text made safe for XML reports."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def first_line(text: str) -> str:
    """The first line that says something, stripped ('' when there is none)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def last_line(text: str) -> str:
    """The last non-blank line of a command's output, for one-line errors."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def output_lines(output: str) -> list[str]:
    """A program's output as lines, whether it ended them with \n or \r\n."""
    return [line.removesuffix("\r") for line in output.replace("\r\n", "\n").split("\n")]


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def clean_text(text: str) -> str:
    """Text safe for XML: no ANSI sequences, no characters XML forbids."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", strip_ansi(text))
