import os
import shutil
from pathlib import Path

import pytest
from clirun import run_ccvm

from ccvm.errors import ConfigError
from ccvm.matrix.axes import Accel, Arch, Machine
from ccvm.matrix.model import Cell, load_matrix, matrix_root

ROOT = Path(__file__).resolve().parent.parent

GOOD_BOOT = """\
defaults:
  memory: 512M
cells:
  - arch: x86_64
    accel: [kvm, tcg]
    machine: q35
  - arch: aarch64
    accel: [kvm, tcg]
    machine: virt
"""


@pytest.fixture
def matrix_dir(tmp_path):
    target = tmp_path / "matrix"
    shutil.copytree(ROOT / "matrix", target)
    return target


def write_boot(matrix_dir, text):
    (matrix_dir / "boot.yaml").write_text(text)


def test_project_matrix_has_the_four_cells():
    ids = [cell.id for cell in load_matrix(ROOT / "matrix").cells]
    assert ids == ["x86_64-kvm-q35", "x86_64-tcg-q35", "aarch64-kvm-virt", "aarch64-tcg-virt"]


def test_ids_follow_axis_order_not_key_order(matrix_dir):
    write_boot(matrix_dir, "cells:\n  - {machine: virt, accel: tcg, arch: aarch64}\n")
    assert [c.id for c in load_matrix(matrix_dir).cells] == ["aarch64-tcg-virt"]


def test_cell_is_frozen_and_keyword_only():
    cell = Cell(arch=Arch.X86_64, accel=Accel.TCG, machine=Machine.Q35)
    with pytest.raises(AttributeError):
        cell.arch = Arch.AARCH64  # type: ignore[misc]
    with pytest.raises(TypeError):
        Cell(Arch.X86_64, Accel.TCG, Machine.Q35)  # type: ignore[misc]


def test_settings_are_parsed(matrix_dir):
    write_boot(matrix_dir, GOOD_BOOT.replace("512M", "1G"))
    assert load_matrix(matrix_dir).cells[0].settings.memory_mib == 1024


BAD = [
    ("cells:\n  - arch: x86_64\n    accel: tcg\n    machine: [q35\n", 5, "malformed YAML"),
    (
        "cells:\n  - arch: x86_65\n    accel: tcg\n    machine: q35\n",
        2,
        "unknown arch 'x86_65' (did you mean 'x86_64'?)",
    ),
    ("cells:\n  - arch: x86_64\n    accel: tgc\n    machine: q35\n", 3, "unknown accel 'tgc' (did you mean 'tcg'?)"),
    ("cells:\n  - arch: x86_64\n    accel: tcg\n    machine: virt\n", 4, "virt does not go with x86_64; use q35"),
    (
        "cells:\n  - {arch: x86_64, accel: tcg, machine: q35}\n  - {arch: x86_64, accel: [kvm, tcg], machine: q35}\n",
        3,
        "duplicate cell x86_64-tcg-q35 (first at line 2)",
    ),
    (
        "cells:\n  - arch: x86_64\n    acel: tcg\n    machine: q35\n",
        3,
        "unknown key 'acel' in a cell (did you mean 'accel'?)",
    ),
    ("cell:\n  - arch: x86_64\n", 1, "unknown key 'cell' in boot.yaml (did you mean 'cells'?)"),
    ("cells:\n  - arch: x86_64\n    accel: tcg\n", 2, "cell is missing the 'machine' axis"),
    ("defaults:\n  memory: lots\ncells: []\n", 2, "'lots' is not a size"),
    ("cells:\n  - {arch: x86_64, accel: tcg, machine: q35}\ncells: []\n", 3, "duplicate key 'cells'"),
    ("cells: []\n", 1, "cells is empty"),
    ("- just a list\n", 1, "must be a mapping"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD, ids=[b[2][:30] for b in BAD])
def test_bad_input_names_file_line_and_problem(matrix_dir, text, line, message):
    write_boot(matrix_dir, text)
    with pytest.raises(ConfigError) as caught:
        load_matrix(matrix_dir)
    assert str(caught.value).startswith(f"{matrix_dir / 'boot.yaml'}:{line}: ")
    assert message in str(caught.value)


def test_unknown_matrix_file_is_rejected(matrix_dir):
    (matrix_dir / "bot.yaml").write_text("{}\n")
    with pytest.raises(ConfigError, match="unknown matrix file .*did you mean 'boot.yaml'"):
        load_matrix(matrix_dir)


def test_bad_pin_sha(matrix_dir):
    text = (matrix_dir / "guest.yaml").read_text().replace("e0061f95", "zz", 1)
    (matrix_dir / "guest.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"guest.yaml:\d+: sha256 must be 64 hexadecimal digits"):
        load_matrix(matrix_dir)


@pytest.mark.parametrize(("text", "line", "message"), BAD[:4], ids=[b[2][:30] for b in BAD[:4]])
def test_cli_prints_one_line_and_exits_2(matrix_dir, text, line, message):
    write_boot(matrix_dir, text)
    result = run_ccvm("--matrix", str(matrix_dir), "matrix", "--no-probe", timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"boot.yaml:{line}: " in lines[0] and message in lines[0]


def test_yaml_aliases_are_refused_not_expanded(matrix_dir):
    write_boot(matrix_dir, "cells: &c [*c]\n")
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_matrix(matrix_dir)
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    write_boot(matrix_dir, laughs + "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\ncells: []\n")
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_matrix(matrix_dir)


def test_matrix_root_is_the_option_then_the_environment_then_base_matrix(monkeypatch, tmp_path):
    monkeypatch.setenv("CCVM_MATRIX", str(tmp_path / "from-env"))
    assert matrix_root("given", base=tmp_path) == Path("given")
    assert matrix_root(None, base=tmp_path) == tmp_path / "from-env"
    monkeypatch.delenv("CCVM_MATRIX")
    assert matrix_root(None, base=tmp_path) == tmp_path / "matrix"
    assert matrix_root() == Path("matrix")


def test_an_empty_matrix_option_or_variable_means_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("CCVM_MATRIX", "")
    assert matrix_root("", base=tmp_path) == tmp_path / "matrix"
    assert matrix_root() == Path("matrix")


@pytest.mark.parametrize(
    "args", [("matrix", "--no-probe"), ("generate", "--check"), ("gate", "--plan")], ids=lambda a: a[0]
)
def test_every_command_reads_an_empty_ccvm_matrix_as_unset(args):
    result = run_ccvm(*args, env={**os.environ, "CCVM_MATRIX": ""}, timeout=60)
    assert result.returncode == 0, result.stderr


def test_an_unknown_option_is_named_with_its_subcommand(tmp_path):
    from clirun import run_ccvm

    result = run_ccvm("matrix", "--bogus", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "ccvm: error: ccvm matrix: unrecognized arguments: --bogus (see ccvm matrix --help)"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--bogus",), "ccvm: unrecognized arguments: --bogus (see ccvm --help)"),
        (("--bogus", "matrix"), "ccvm: unrecognized arguments: --bogus (see ccvm --help)"),
        ((), "ccvm: a COMMAND is required (see ccvm --help)"),
    ],
)
def test_an_unknown_option_given_to_ccvm_itself_is_named(tmp_path, args, said):
    result = run_ccvm(*args, cwd=tmp_path)
    assert (result.returncode, result.stderr.strip()) == (2, f"ccvm: error: {said}")
