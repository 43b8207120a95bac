"""What a project's .editorconfig files tell shfmt about each shell script.

shfmt, given no formatting flags, reads the .editorconfig files from the
script's directory upward (stopping at one that says ``root = true``), as
EditorConfig says: sections match by glob (``*``, ``**``, ``?``,
``[abc]``, ``{a,b}``, ``{1..3}``; a glob without ``/`` matches the file
name at any depth), later sections and nearer files win.  shfmt also knows
the language sections ``[[shell]]`` and ``[[bash]]``.  The keys it uses are
``indent_style``, ``indent_size``, ``shell_variant``, ``binary_next_line``,
``switch_case_indent``, ``space_redirects``, ``keep_padding``,
``function_next_line``, ``simplify``, ``minify`` and ``ignore``.

This module says, for a script, which of those keys apply and on which
line each was set, so ``ccvm init`` can tell a finding under the project's
own .editorconfig from one under shfmt's defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SHFMT_KEYS = frozenset(
    {
        "indent_style",
        "indent_size",
        "shell_variant",
        "binary_next_line",
        "switch_case_indent",
        "space_redirects",
        "keep_padding",
        "function_next_line",
        "simplify",
        "minify",
        "ignore",
    }
)
_SECTION = re.compile(r"^\s*\[(.*)\]\s*(?:[#;].*)?$")
_PAIR = re.compile(r"^\s*([^=:#;\s][^=:]*?)\s*[=:]\s*(.*?)\s*$")


@dataclass(frozen=True, kw_only=True)
class Section:
    glob: str
    line: int
    pairs: tuple[tuple[str, str, int], ...]  # key, value, line


@dataclass(frozen=True, kw_only=True)
class EditorConfig:
    path: str  # relative to the project root
    root: bool
    sections: tuple[Section, ...]


def parse(text: str, relpath: str) -> EditorConfig:
    root, sections = False, []
    glob, glob_line, pairs = None, 0, []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        section = _SECTION.match(line)
        if section:
            if glob is not None:
                sections.append(Section(glob=glob, line=glob_line, pairs=tuple(pairs)))
            glob, glob_line, pairs = section.group(1), number, []
            continue
        pair = _PAIR.match(line)
        if not pair:
            continue
        key, value = pair.group(1).lower(), pair.group(2)
        if glob is None:
            root = root or (key == "root" and value.lower() == "true")
        else:
            pairs.append((key, value, number))
    if glob is not None:
        sections.append(Section(glob=glob, line=glob_line, pairs=tuple(pairs)))
    return EditorConfig(path=relpath, root=root, sections=tuple(sections))


def _braces(body: str) -> str:
    numbers = re.fullmatch(r"([+-]?\d+)\.\.([+-]?\d+)", body)
    if numbers:
        low, high = sorted((int(numbers.group(1)), int(numbers.group(2))))
        return "(?:" + "|".join(str(n) for n in range(low, high + 1)) + ")"
    choices, depth, current = [], 0, []
    for char in body:
        if char == "," and depth == 0:
            choices.append("".join(current))
            current = []
            continue
        depth += char == "{"
        depth -= char == "}"
        current.append(char)
    choices.append("".join(current))
    if len(choices) == 1:
        return re.escape("{" + body + "}")
    return "(?:" + "|".join(_translate(choice) for choice in choices) + ")"


def _translate(glob: str) -> str:
    out, index = [], 0
    while index < len(glob):
        char = glob[index]
        if glob.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = glob.find("]", index + 1)
            if end < 0:
                out.append(r"\[")
            else:
                body = glob[index + 1 : end]
                out.append("[^" + re.escape(body[1:]) + "]" if body.startswith("!") else "[" + re.escape(body) + "]")
                index = end
        elif char == "{":
            depth, end = 0, index
            for end in range(index, len(glob)):
                depth += glob[end] == "{"
                depth -= glob[end] == "}"
                if depth == 0:
                    break
            if depth:
                out.append(r"\{")
            else:
                out.append(_braces(glob[index + 1 : end]))
                index = end
        elif char == "\\" and index + 1 < len(glob):
            out.append(re.escape(glob[index + 1]))
            index += 1
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


def glob_matches(glob: str, relpath: str) -> bool:
    """An EditorConfig section glob against a path relative to the .editorconfig's directory."""
    pattern = glob if "/" in glob else "**/" + glob
    pattern = pattern.removeprefix("/")
    regex = _translate(pattern)
    if pattern.startswith("**/"):  # **/x matches x at the top too
        regex = "(?:.*/)?" + _translate(pattern[3:])
    return re.fullmatch(regex, relpath, re.DOTALL) is not None


def _language_section(glob: str, is_bash: bool) -> bool | None:
    """shfmt's [[shell]] and [[bash]] sections: whether one matches; None for an ordinary glob."""
    if glob in ("[shell]", "[bash]", "[posix]", "[mksh]", "[bats]"):
        return glob == "[shell]" or (glob == "[bash]" and is_bash)
    return None


@dataclass(frozen=True, kw_only=True)
class Applied:
    """The shfmt keys that apply to one script: key -> (value, 'file:line')."""

    keys: dict[str, tuple[str, str]]

    @property
    def formats(self) -> bool:
        """Whether any key shapes shfmt's output (ignore alone does not)."""
        return any(key != "ignore" for key in self.keys)

    def describe(self) -> str:
        return ", ".join(f"{key} = {value} ({where})" for key, (value, where) in sorted(self.keys.items()))


def load(root: Path, relpaths: tuple[str, ...]) -> list[EditorConfig]:
    """Every .editorconfig among the project's files (and at the root), nearest the root first."""
    names = {p for p in relpaths if PurePosixPath(p).name == ".editorconfig"}
    if (root / ".editorconfig").is_file():
        names.add(".editorconfig")
    configs = []
    for relpath in sorted(names, key=lambda p: (p.count("/"), p)):
        try:
            configs.append(parse((root / relpath).read_text(encoding="utf-8", errors="replace"), relpath))
        except OSError:
            continue
    return configs


def applied(configs: list[EditorConfig], script: str, *, is_bash: bool = True) -> Applied:
    """The shfmt keys the .editorconfig files give one script (a path relative to the project root)."""
    chain = []
    for config in configs:
        directory = PurePosixPath(config.path).parent.as_posix()
        if directory == "." or script.startswith(directory + "/"):
            chain.append((config, script if directory == "." else script[len(directory) + 1 :]))
    # From the nearest file upward, stop at root = true; then apply farthest first.
    chain.sort(key=lambda item: -item[0].path.count("/"))
    used = []
    for config, relative in chain:
        used.append((config, relative))
        if config.root:
            break
    keys: dict[str, tuple[str, str]] = {}
    for config, relative in reversed(used):
        for section in config.sections:
            language = _language_section(section.glob, is_bash)
            matches = language if language is not None else glob_matches(section.glob, relative)
            if not matches:
                continue
            for key, value, line in section.pairs:
                if key in SHFMT_KEYS:
                    keys[key] = (value, f"{config.path}:{line}")
    if keys.get("indent_style", ("",))[0].lower() == "tab":
        keys.pop("indent_size", None)  # shfmt: tabs whatever the size
    return Applied(keys={k: v for k, v in keys.items() if v[0].lower() != "unset"})
