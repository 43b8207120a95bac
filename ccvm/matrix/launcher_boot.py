"""The boot scenarios of a declared launcher (``boot:`` in matrix/launcher.yaml).

Each scenario is one boot of the launcher in a fresh shared directory: the
arguments to pass, the share mode, the lines the program must print
(regular expressions, each matching some line), the files that must and
must not exist in the shared directory on the host afterwards, and the
launcher's exit status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ccvm.errors import ConfigError
from ccvm.matrix import yamlvalues as values
from ccvm.matrix.limits import MAX_TIMEOUT_S
from ccvm.matrix.yamlsrc import Mapping, Sequence, expect_mapping, expect_sequence

DEFAULT_BOOT_TIMEOUT_S = 600.0
SCENARIO_KEYS = ["name", "args", "share", "env", "prepare", "expect", "host_files", "exit_status"]


@dataclass(frozen=True, kw_only=True)
class BootScenario:
    name: str
    args: tuple[str, ...] = ()  # after the launcher's argv and the share switch, verbatim
    share: str  # a declared share mode
    env: dict[str, str] = field(default_factory=dict)  # added to the cell's environment
    prepare: dict[str, str] = field(default_factory=dict)  # files written into the shared directory first
    expect: tuple[re.Pattern[str], ...] = ()  # each must match (re.search) some output line
    must_exist: tuple[str, ...] = ()  # relative to the shared directory, after the run
    must_not_exist: tuple[str, ...] = ()
    exit_status: int = 0
    # ccvm's own cases asserted on this boot, each a JUnit case (ccvm.checks.boot.judge.CASE_CHECKS;
    # the embedded launcher's boots name them); none: one case, named as the scenario, asserting
    # what the scenario declares.
    cases: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BootDeclaration:
    timeout_s: float | None = None  # one boot of one scenario; None: the cell's timeout (boot.yaml)
    scenarios: tuple[BootScenario, ...] = ()


def _relative_path(items: Sequence | Mapping, index_or_key: object, raw: object) -> str:
    line = items.line_of(index_or_key)  # type: ignore[arg-type]
    path = PurePosixPath(str(raw))
    if str(raw) == "" or path.is_absolute() or ".." in path.parts:
        raise ConfigError(items.path, line, f"{raw!r} must be a path inside the shared directory (relative, no '..')")
    return str(path)


def _paths(doc: Mapping, key: str) -> tuple[str, ...]:
    items = expect_sequence(doc[key], doc.path, doc.line_of(key), key)
    return tuple(_relative_path(items, index, item) for index, item in enumerate(items))


def _host_files(doc: Mapping) -> tuple[tuple[str, ...], tuple[str, ...]]:
    files = expect_mapping(doc["host_files"], doc.path, doc.line_of("host_files"), "host_files")
    files.reject_unknown_keys(["exist", "absent"], "host_files")
    exist = _paths(files, "exist") if "exist" in files else ()
    absent = _paths(files, "absent") if "absent" in files else ()
    both = set(exist) & set(absent)
    if both:
        raise files.error(None, f"{sorted(both)[0]} cannot both exist and be absent")
    return exist, absent


def _patterns(doc: Mapping) -> tuple[re.Pattern[str], ...]:
    items = expect_sequence(doc["expect"], doc.path, doc.line_of("expect"), "expect")
    found = []
    for index, raw in enumerate(items):
        if not isinstance(raw, str) or not raw:
            raise ConfigError(
                items.path, items.line_of(index), f"each expect item must be a regular expression string, not {raw!r}"
            )
        try:
            found.append(re.compile(raw))
        except re.error as exc:
            raise ConfigError(items.path, items.line_of(index), f"bad regular expression {raw!r}: {exc}") from None
    return tuple(found)


def _prepare(doc: Mapping) -> dict[str, str]:
    files = values.string_map(doc, "prepare")
    mapping = expect_mapping(doc["prepare"], doc.path, doc.line_of("prepare"), "prepare")
    return {_relative_path(mapping, name, name): content for name, content in files.items()}


def parse_scenario(doc: Mapping, share_modes: tuple[str, ...]) -> BootScenario:
    doc.reject_unknown_keys(SCENARIO_KEYS, "a boot scenario")
    for required in ("name", "share"):
        if required not in doc:
            raise doc.error(None, f"a boot scenario needs `{required}`")
    exist, absent = _host_files(doc) if "host_files" in doc else ((), ())
    return BootScenario(
        name=values.text(doc, "name"),
        args=values.words(doc, "args") if "args" in doc else (),
        share=values.choice(doc, "share", share_modes),
        env=values.string_map(doc, "env") if "env" in doc else {},
        prepare=_prepare(doc) if "prepare" in doc else {},
        expect=_patterns(doc) if "expect" in doc else (),
        must_exist=exist,
        must_not_exist=absent,
        exit_status=values.whole(doc, "exit_status", 0, 255) if "exit_status" in doc else 0,
    )


def parse_boot_declaration(doc: Mapping, share_modes: tuple[str, ...]) -> BootDeclaration:
    doc.reject_unknown_keys(["timeout", "scenarios"], "boot")
    timeout_s = values.seconds(doc, "timeout", MAX_TIMEOUT_S) if "timeout" in doc else DEFAULT_BOOT_TIMEOUT_S
    if "scenarios" not in doc:
        raise doc.error(None, "boot needs `scenarios`: a list of boots, each with a name, share mode and expectations")
    scenarios = values.named_list(
        doc,
        "scenarios",
        lambda entry, _index: parse_scenario(entry, share_modes),
        each="each scenario",
        taken=lambda name: f"duplicate scenario name {name!r}",
        empty="scenarios is empty; declare at least one boot",
    )
    return BootDeclaration(timeout_s=timeout_s, scenarios=scenarios)
