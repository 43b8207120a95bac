"""ccvm baseline: what matrix/baseline.yaml knows, and the only ways it changes.

    ccvm baseline              what is known, new and fixed, per tool (writes nothing)
    ccvm baseline --prune      drop the known findings that are gone (fixed, or their file is)
    ccvm baseline --record     take in every finding present now (the one way the baseline grows)

Each runs fmt's and lint's tools once over the project (a missing tool is
left out, and its entries kept)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from ccvm.adopt.formatters import project_style
from ccvm.checks.baseline import Checked
from ccvm.checks.record import not_run, pruned, recorded, run_all
from ccvm.commands.matrixdir import baseline_for, project_matrix_dir, style_for
from ccvm.commands.reporting import add_root_option, root_from
from ccvm.errors import ConfigError
from ccvm.files import write_atomic
from ccvm.matrix.baseline import BASELINE_FILE, Baseline, dump_baseline
from ccvm.matrix.style import TOOLS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "baseline",
        help="the findings known since adoption (matrix/baseline.yaml): show, --prune or --record",
        description="Run fmt's and lint's tools once and hold what they find against matrix/baseline.yaml "
        "(written by ccvm init: the findings the project had when it adopted ccvm). Without an option, say "
        "per tool how many findings are known, new and fixed. --prune drops the known findings that are gone "
        "(fixed, or their file deleted); --record makes the baseline exactly what is found now, the one way "
        "it ever grows. A tool that is missing here is left out and its entries are kept.",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--prune", action="store_true", help="drop the known findings no longer found")
    what.add_argument("--record", action="store_true", help="record every finding present now")
    parser.add_argument(
        "--tool", action="append", choices=TOOLS, default=[], help="only this tool (repeatable; default: all)"
    )
    add_root_option(parser)
    parser.set_defaults(func=run)


def _status(baseline: Baseline, checked: list[Checked]) -> list[str]:
    lines = []
    for c in checked:
        if c.verdicts is None:
            continue
        known = sum(len(v.known) for v in c.verdicts.values())
        new = Counter(f.file for v in c.verdicts.values() for f in v.new)
        gone = baseline.count(c.tool) - known
        line = f"{c.tool}: {known} known, {sum(new.values())} new, {gone} fixed or gone"
        if new:
            line += " (new in " + ", ".join(f"{file}: {n}" for file, n in sorted(new.items())) + ")"
        lines.append(line)
    return lines


def _write(path: Path, entries: list) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, dump_baseline(entries).encode("utf-8"))
    except OSError as exc:
        raise ConfigError(path, None, f"cannot write: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    root = root_from(args)
    style = style_for(args, root)
    baseline = baseline_for(args, root)
    path = project_matrix_dir(args, root) / BASELINE_FILE
    tools = tuple(args.tool) or TOOLS
    print(f"baseline: {path}: {baseline.count()} known finding(s)" if baseline.path else f"baseline: no {path}")
    checked = run_all(root, style=style, baseline=baseline, tools=tools)
    for tool, why in not_run(checked, tools).items():
        print(f"{tool}: not run ({why}); its entries are kept")
    if args.record:
        change = recorded(baseline, checked, project_style(root).own_setting)
    elif args.prune:
        change = pruned(baseline, checked)
    else:
        for line in _status(baseline, checked):
            print(line)
        print("`ccvm baseline --prune` drops what is fixed or gone; `ccvm baseline --record` takes in what is new")
        return 0
    if not change.added and not change.dropped:
        print(f"baseline: nothing to change in {path}")
        return 0
    _write(path, change.entries)
    print(f"baseline: {change.added} finding(s) added, {change.dropped} dropped; wrote {path}")
    return 0
