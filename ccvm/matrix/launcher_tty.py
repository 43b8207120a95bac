"""The terminal scenarios of a launcher (``tty:`` in matrix/launcher.yaml).

Each scenario runs the launcher once under a pseudo-terminal of a chosen
size and TERM, then takes its steps in order.  A step may resize the
terminal, send keys (text, YAML escapes such as ``\\r`` and ``\\x03``, or
named keys such as ``ctrl-c``), and expect the screen, as a terminal
emulator draws it, to show lines matching regular expressions (on any
line, or on a given line: 1 is the top, -1 the bottom, ``cursor`` the
cursor's line).  Each step is a
JUnit case; so is the launcher's exit status at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ccvm.errors import ConfigError
from ccvm.matrix import yamlvalues as values
from ccvm.matrix.axes import suggestion
from ccvm.matrix.limits import MAX_TIMEOUT_S
from ccvm.matrix.yamlsrc import Mapping, Sequence, expect_sequence

DEFAULT_STEP_TIMEOUT_S = 30.0
DEFAULT_EXIT_TIMEOUT_S = 60.0
DEFAULT_TERM = "xterm-256color"
MAX_SIDE = 1000  # rows or columns
SCENARIO_KEYS = ["name", "args", "share", "env", "size", "term", "steps", "exit_status", "exit_timeout"]
STEP_KEYS = ["name", "pause", "resize", "send", "keys", "expect", "timeout"]
EXIT_CASE = "exit-status"
CURSOR = "cursor"  # an expect item's line: the line the cursor is on

KEYS: dict[str, bytes] = {
    "enter": b"\r",
    "tab": b"\t",
    "escape": b"\x1b",
    "backspace": b"\x7f",
    "space": b" ",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "right": b"\x1b[C",
    "left": b"\x1b[D",
    "ctrl-\\": b"\x1c",
    "ctrl-]": b"\x1d",
    **{f"ctrl-{chr(c)}": bytes([c - ord("a") + 1]) for c in range(ord("a"), ord("z") + 1)},
}


@dataclass(frozen=True, kw_only=True)
class ScreenLine:
    """A line the screen must show: ``pattern`` (re.search) on line ``line``
    (1 the top, -1 the bottom, CURSOR the cursor's line), or on any line
    when ``line`` is None."""

    pattern: re.Pattern[str]
    line: int | str | None = None

    def describe(self) -> str:
        where = "" if self.line is None else f" on line {self.line}"
        return f"line matching {self.pattern.pattern!r}{where}"


@dataclass(frozen=True, kw_only=True)
class TtyStep:
    name: str
    pause_s: float = 0.0  # wait before the step's actions
    resize: tuple[int, int] | None = None  # rows, columns
    send: bytes = b""
    expect: tuple[ScreenLine, ...] = ()
    timeout_s: float = DEFAULT_STEP_TIMEOUT_S


@dataclass(frozen=True, kw_only=True)
class TtyScenario:
    name: str
    share: str  # a declared share mode
    rows: int
    cols: int
    term: str = DEFAULT_TERM
    args: tuple[str, ...] = ()  # after the launcher's argv and the share switch, verbatim
    env: dict[str, str] = field(default_factory=dict)
    steps: tuple[TtyStep, ...] = ()
    exit_status: int = 0
    exit_timeout_s: float = DEFAULT_EXIT_TIMEOUT_S

    @property
    def case_names(self) -> tuple[str, ...]:
        return (*(step.name for step in self.steps), EXIT_CASE)


def _size(doc: Mapping, key: str) -> tuple[int, int]:
    raw = doc[key]
    ok = (
        isinstance(raw, Sequence)
        and len(raw) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_SIDE for n in raw)
    )
    if not ok:
        raise doc.error(key, f"{key} must be [ROWS, COLUMNS], whole numbers from 0 to {MAX_SIDE}, not {raw!r}")
    return int(raw[0]), int(raw[1])


def _keys(doc: Mapping) -> bytes:
    items = expect_sequence(doc["keys"], doc.path, doc.line_of("keys"), "keys")
    found = b""
    for index, raw in enumerate(items):
        name = str(raw).lower()
        if name not in KEYS:
            raise ConfigError(
                items.path,
                items.line_of(index),
                f"unknown key {raw!r}{suggestion(name, list(KEYS))}; use enter, tab, escape, backspace, space, "
                "up, down, left, right, ctrl-a .. ctrl-z, ctrl-\\ or ctrl-] (or `send` for text)",
            )
        found += KEYS[name]
    return found


def _expect(doc: Mapping) -> tuple[ScreenLine, ...]:
    items = expect_sequence(doc["expect"], doc.path, doc.line_of("expect"), "expect")
    found = []
    for index, raw in enumerate(items):
        line = None
        if isinstance(raw, Mapping):
            raw.reject_unknown_keys(["line", "match"], "an expect item")
            if "match" not in raw or "line" not in raw:
                raise raw.error(
                    None, "an expect item with a line needs `line` (1 the top, -1 the bottom, or cursor) and `match`"
                )
            if raw["line"] == CURSOR:
                line = CURSOR
            else:
                line = values.whole(raw, "line", -MAX_SIDE, MAX_SIDE)
                if line == 0:
                    raise raw.error("line", "line counts from 1 (the top) or -1 (the bottom), or is cursor; not 0")
            raw = raw["match"]
        if not isinstance(raw, str) or not raw:
            raise ConfigError(
                items.path, items.line_of(index), f"each expect item must be a regular expression string, not {raw!r}"
            )
        try:
            found.append(ScreenLine(pattern=re.compile(raw), line=line))
        except re.error as exc:
            raise ConfigError(items.path, items.line_of(index), f"bad regular expression {raw!r}: {exc}") from None
    return tuple(found)


def parse_step(doc: Mapping, index: int) -> TtyStep:
    doc.reject_unknown_keys(STEP_KEYS, "a tty step")
    if "send" in doc and "keys" in doc:
        raise doc.error("keys", "a step sends `send` (text) or `keys` (named keys), not both; make two steps")
    if not any(key in doc for key in ("resize", "send", "keys", "expect")):
        raise doc.error(None, "a tty step needs at least one of `resize`, `send`, `keys` or `expect`")
    send = b""
    if "send" in doc:
        send = values.text(doc, "send").encode("utf-8", "surrogateescape")
    elif "keys" in doc:
        send = _keys(doc)
    resize = _size(doc, "resize") if "resize" in doc else None
    return TtyStep(
        name=values.text(doc, "name") if "name" in doc else f"step-{index + 1}",
        pause_s=values.seconds(doc, "pause", 60) if "pause" in doc else 0.0,
        resize=resize,
        send=send,
        expect=_expect(doc) if "expect" in doc else (),
        timeout_s=values.seconds(doc, "timeout", MAX_TIMEOUT_S) if "timeout" in doc else DEFAULT_STEP_TIMEOUT_S,
    )


def parse_tty_scenario(doc: Mapping, share_modes: tuple[str, ...]) -> TtyScenario:
    doc.reject_unknown_keys(SCENARIO_KEYS, "a tty scenario")
    for required in ("name", "share", "size", "steps"):
        if required not in doc:
            raise doc.error(None, f"a tty scenario needs `{required}`")
    share = values.choice(doc, "share", share_modes)
    rows, cols = _size(doc, "size")
    steps = values.named_list(
        doc,
        "steps",
        parse_step,
        each="each step",
        taken=lambda name: f"step name {name!r} is taken; each step's name is a JUnit case of its own",
        empty="steps is empty; declare at least one step",
        reserved=(EXIT_CASE,),
    )
    return TtyScenario(
        name=values.text(doc, "name"),
        share=share,
        rows=rows,
        cols=cols,
        term=values.text(doc, "term") if "term" in doc else DEFAULT_TERM,
        args=values.words(doc, "args") if "args" in doc else (),
        env=values.string_map(doc, "env") if "env" in doc else {},
        steps=steps,
        exit_status=values.whole(doc, "exit_status", 0, 255) if "exit_status" in doc else 0,
        exit_timeout_s=values.seconds(doc, "exit_timeout", MAX_TIMEOUT_S)
        if "exit_timeout" in doc
        else DEFAULT_EXIT_TIMEOUT_S,
    )


def parse_tty_declaration(doc: Mapping, share_modes: tuple[str, ...]) -> tuple[TtyScenario, ...]:
    doc.reject_unknown_keys(["scenarios"], "tty")
    if "scenarios" not in doc:
        raise doc.error(None, "tty needs `scenarios`: a list of terminal sessions, each with a size and steps")
    return values.named_list(
        doc,
        "scenarios",
        lambda entry, _index: parse_tty_scenario(entry, share_modes),
        each="each tty scenario",
        taken=lambda name: f"duplicate tty scenario name {name!r}",
        empty="scenarios is empty; declare at least one terminal session",
    )
