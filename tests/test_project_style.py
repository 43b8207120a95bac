"""ccvm init reads a project's own settings for every tool it runs: treefmt.toml,
treefmt-nix (the options each module really passes, lib.mkForce and the other
priorities), CI workflow, Makefile and pre-commit lines, .editorconfig (as shfmt
reads it), .shellcheckrc and ruff's configuration; each with where it came from.
Pure text reading: no tool runs here."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccvm.adopt import editorconfig
from ccvm.adopt.formatters import project_style, style_yaml_text
from ccvm.adopt.nixattrs import Unknown, bindings
from ccvm.adopt.nixexpr import NixSyntaxError
from ccvm.adopt.settings import treefmt_glob
from ccvm.adopt.toollines import command_lines
from ccvm.matrix.style import load_style


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def options(root: Path, tool: str) -> tuple[str, ...]:
    return project_style(root).tool(tool).options


ON = "{ lib, ... }: { programs.shfmt.enable = true; "
FORCED = """{ pkgs, lib, ... }:
{
  projectRootFile = "flake.nix";
  programs.shfmt.enable = true;
  settings.formatter.shfmt.options = lib.mkForce [ "-w" "-i" "2" "-s" "-ci" ];
}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # What treefmt-nix's shfmt module passes by itself: -w (dropped), -i 2 and -s.
        ("{ programs.shfmt.enable = true; }", ("-i", "2", "-s")),
        ("{ programs.shfmt = { enable = true; indent_size = 4; }; }", ("-i", "4", "-s")),
        ("{ programs.shfmt.enable = true; programs.shfmt.simplify = false; }", ("-i", "2")),
        ("{ programs.shfmt.enable = true; programs.shfmt.indent_size = 0; }", ("-i", "0", "-s")),
        ("{ programs.shfmt = { enable = true; useEditorConfig = true; }; }", ()),
        # The project's own options, as the module system merges them.
        (FORCED, ("-i", "2", "-s", "-ci")),
        (
            ON + 'settings.formatter.shfmt.options = [ "-ci" ]; }',
            ("-i", "2", "-s", "-ci"),
        ),
        (
            ON + 'settings.formatter.shfmt.options = lib.mkDefault [ "-ci" ]; }',
            ("-i", "2", "-s"),
        ),
        (
            ON + 'settings.formatter.shfmt.options = lib.mkBefore [ "-ci" ]; }',
            ("-ci", "-i", "2", "-s"),
        ),
        (
            ON + 'settings.formatter.shfmt.options = lib.mkOverride 10 [ "-i" "8" ]; }',
            ("-i", "8"),
        ),
        (
            'let opts = [ "-i" "3" ]; in\n' + ON + "settings.formatter.shfmt.options = mkForce opts; }",
            ("-i", "3"),
        ),
        # Nested the way flake.nix files nest it: flake-parts perSystem, evalModule's argument.
        (
            "{ inputs, ... }: { perSystem = { pkgs, ... }: { treefmt = { programs.shfmt.enable = true; }; }; }",
            ("-i", "2", "-s"),
        ),
        (
            "{ outputs = { treefmt-nix, ... }: let t = treefmt-nix.lib.evalModule pkgs "
            "{ programs = { shfmt = { enable = true; indent_size = 4; }; }; }; in { }; }",
            ("-i", "4", "-s"),
        ),
    ],
)
def test_treefmt_nix_gives_exactly_what_the_module_passes(tmp_path, text, expected):
    write(tmp_path, {"treefmt.nix": text})
    assert options(tmp_path, "shfmt") == expected


def test_forced_shfmt_options_are_written_with_their_file_and_line(tmp_path):
    write(tmp_path, {"nix/treefmt.nix": FORCED})
    style = project_style(tmp_path)
    assert style.tool("shfmt").source.startswith("nix/treefmt.nix:5 settings.formatter.shfmt.options = lib.mkForce")
    text = style_yaml_text(style, "# header")
    (tmp_path / "matrix").mkdir()
    (tmp_path / "matrix" / "style.yaml").write_text(text)
    loaded = load_style(tmp_path / "matrix")
    assert loaded.shfmt_options == ("-i", "2", "-s", "-ci")
    assert [g.text for g in loaded.fileset("shfmt").include] == ["*.sh", "*.bash", "*.envrc", "*.envrc.*"]
    assert "# from nix/treefmt.nix:5" in text


def test_other_treefmt_nix_programs_give_their_modules_options(tmp_path):
    write(
        tmp_path,
        {
            "treefmt.nix": """{ lib, ... }: {
  programs.shellcheck = { enable = true; severity = "warning"; extra-checks = [ "require-variable-braces" ]; };
  programs.ruff.enable = true;
  programs.ruff-check.extendSelect = [ "I" ];
  programs.ruff.format = true;
  programs.ruff-format.lineLength = 99;
  programs.nixfmt = { enable = true; width = 120; };
  settings.formatter.ruff-check.excludes = [ "nix/templates/*" ];
  settings.global.excludes = [ "vendor/*" ];
}
"""
        },
    )
    style = project_style(tmp_path)
    assert style.tool("shellcheck").options == ("--enable=require-variable-braces", "--severity=warning")
    assert style.tool("ruff-check").options == ("--extend-select", "I")
    assert style.tool("ruff-format").options == ("--line-length", "99")
    assert style.tool("nixfmt").options == ("--width", "120")
    assert style.tool("ruff-check").excludes == ("nix/templates/**", "vendor/**")
    text = style_yaml_text(style, "# header")
    write(tmp_path, {"matrix/style.yaml": text})
    loaded = load_style(tmp_path / "matrix")
    assert loaded.shellcheck_severity == "warning"
    assert loaded.options_of("shellcheck") == ("--enable=require-variable-braces",)
    assert loaded.fileset("ruff-check").select(("nix/templates/a.py", "x.py")) == ("x.py",)


def test_another_nix_formatter_means_nixfmt_is_skipped_with_the_reason(tmp_path):
    write(tmp_path, {"treefmt.nix": "{ programs.alejandra.enable = true; }"})
    style = project_style(tmp_path)
    assert "alejandra" in style.tool("nixfmt").skip
    write(tmp_path, {"matrix/style.yaml": style_yaml_text(style, "#")})
    assert "alejandra" in load_style(tmp_path / "matrix").skip["nixfmt"]


def test_the_flakes_formatter_output_counts_for_nixfmt(tmp_path):
    write(
        tmp_path,
        {
            "flake.nix": "{ outputs = { nixpkgs, ... }: {\n"
            "formatter.x86_64-linux = nixpkgs.legacyPackages.x86_64-linux.nixfmt-rfc-style; }; }"
        },
    )
    assert project_style(tmp_path).tool("nixfmt").source.startswith("flake.nix:2 formatter")


@pytest.mark.parametrize(
    "text",
    [
        "{ programs.shfmt.enable = true; settings.formatter.shfmt.options = [ ",  # cut short
        '{ programs.shfmt.enable = true; x = "unterminated; }',
        "{ a = 1 }",
    ],
)
def test_a_treefmt_nix_ccvm_cannot_parse_is_named_and_left_out(tmp_path, text):
    write(tmp_path, {"treefmt.nix": text, ".editorconfig": "root = true\n[*.sh]\nindent_size = 2\n"})
    style = project_style(tmp_path)
    assert style.tool("shfmt").found is None  # fell back: shfmt reads .editorconfig
    assert any(note.startswith("treefmt.nix:1: ccvm cannot read this Nix") for note in style.notes)


def test_an_option_value_ccvm_does_not_evaluate_is_a_note_not_a_guess(tmp_path):
    write(tmp_path, {"treefmt.nix": "{ programs.shfmt.enable = true; settings.formatter.shfmt.options = mkOpts 2; }"})
    style = project_style(tmp_path)
    assert style.tool("shfmt").found is None
    assert any("is not a list ccvm can read (a call of mkOpts)" in note for note in style.notes)


def test_treefmt_toml_for_every_tool_and_its_globs(tmp_path):
    write(
        tmp_path,
        {
            "treefmt.toml": """excludes = ["vendor/*"]
[formatter.sh]
command = "shfmt"
options = ["-w", "-i", "4"]
includes = ["*.sh", "bin/*"]

[formatter.lint-sh]
command = "shellcheck"
options = ["-S", "warning"]
includes = ["*.sh"]

[formatter.ruff]
command = "ruff"
options = ["format"]
includes = ["*.py"]
"""
        },
    )
    style = project_style(tmp_path)
    assert style.tool("shfmt").options == ("-i", "4")
    assert style.tool("shfmt").source == "treefmt.toml:2 [formatter.sh]"
    assert style.tool("shfmt").includes == ("*.sh", "bin/**")
    assert style.tool("shfmt").excludes == ("vendor/**",)
    assert style.tool("shellcheck").options == ("-S", "warning")
    assert style.tool("ruff-format").found is not None and style.tool("ruff-check").found is None


def test_treefmt_globs_cross_directories_as_treefmt_does():
    assert treefmt_glob("*.sh") == "*.sh"
    assert treefmt_glob("vendor/*") == "vendor/**"
    assert treefmt_glob("scripts/*.sh") == "scripts/**/*.sh"
    assert treefmt_glob("./nix/sources.nix") == "nix/sources.nix"
    assert treefmt_glob("result-*/**") == "result-*/**"


WORKFLOW = """name: lint
on: [pull_request]
jobs:
  shell:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: install
        run: sudo apt-get install -y shellcheck shfmt
      - name: format
        run: |
          shfmt --version
          shfmt -i 4 -ci -d .
      - uses: ludeeus/action-shellcheck@master
        with:
          severity: warning
          ignore_paths: vendor
"""


def test_ci_workflow_lines_and_actions_give_flags_with_their_line(tmp_path):
    write(tmp_path, {".github/workflows/lint.yml": WORKFLOW})
    style = project_style(tmp_path)
    assert style.tool("shfmt").options == ("-i", "4", "-ci")
    assert style.tool("shfmt").source == ".github/workflows/lint.yml:13 runs shfmt -i 4 -ci -d"
    shellcheck = style.tool("shellcheck")
    assert shellcheck.options == ("--severity=warning",)
    assert shellcheck.excludes == ("vendor/",)
    assert shellcheck.source.startswith(".github/workflows/lint.yml:16 uses ludeeus/action-shellcheck")


def test_ccvms_own_generated_workflow_is_not_read(tmp_path):
    generated = "# generated by ccvm generate, do not edit\n" + WORKFLOW
    write(tmp_path, {".github/workflows/ccvm.yml": generated})
    assert project_style(tmp_path).tool("shfmt").found is None


@pytest.mark.parametrize(
    ("line", "tool", "flags"),
    [
        ("shellcheck -S warning scripts/*.sh", "shellcheck", ("-S", "warning")),
        ("find . -name '*.sh' -exec shellcheck -x {} +", "shellcheck", ("-x",)),
        ("git ls-files '*.sh' | xargs shellcheck --severity=error", "shellcheck", ("--severity=error",)),
        ("nix run nixpkgs#shfmt -- -i 2 -d .", "shfmt", ("-i", "2")),
        ("set -e; ruff check --select I .", "ruff-check", ("--select", "I")),
        ("python -m ruff format --check src", "ruff-format", ()),
        ("nixfmt --check --width 120 .", "nixfmt", ("--width", "120")),
        ("@if ! shfmt -i 2 -d run.sh > /dev/null 2>&1; then exit 1; fi", "shfmt", ("-i", "2")),
        ("if shfmt -ci -d run.sh; then :; fi", "shfmt", ("-ci",)),
        ("shfmt -d -i 2 -bn ${{ steps.files.outputs.files }}", "shfmt", ("-i", "2", "-bn")),
    ],
)
def test_a_tool_run_as_a_command_is_found(line, tool, flags):
    found = command_lines(line, "Makefile")
    assert [(f.tool, f.options) for f in found] == [(tool, flags)]


@pytest.mark.parametrize(
    "line",
    [
        "apt-get install -y shellcheck",
        "command -v shfmt",
        "shfmt --version",
        "echo run shellcheck",
        "pip install ruff",
        'echo "Formatting issues found. Run: shfmt -i 2 -w x.sh"',
    ],
)
def test_installing_or_looking_for_a_tool_is_not_a_run(line):
    assert command_lines(line, "Makefile") == []


def test_justfile_and_lefthook(tmp_path):
    write(
        tmp_path,
        {
            "justfile": "fmt:\n    shfmt -i 4 -d .\n",
            "lefthook.yml": "pre-commit:\n  commands:\n    shellcheck:\n      glob: '*.sh'\n"
            "      run: shellcheck -S error {staged_files}\n",
        },
    )
    style = project_style(tmp_path)
    assert style.tool("shfmt").source == "justfile:2 runs shfmt -i 4 -d"
    assert style.tool("shellcheck").options == ("-S", "error")
    assert style.tool("shellcheck").source == "lefthook.yml:5 runs shellcheck -S error"


def test_makefile_and_pre_commit(tmp_path):
    write(
        tmp_path,
        {
            "Makefile": "lint:\n\t@shellcheck -x -e SC1091 bin/*.sh\n",
            ".pre-commit-config.yaml": "repos:\n  - repo: https://example.org/shfmt\n    rev: v1\n    hooks:\n"
            "      - id: shfmt\n        args: [-i, '2', -ci, -w]\n",
        },
    )
    style = project_style(tmp_path)
    assert style.tool("shellcheck").options == ("-x", "-e", "SC1091")
    assert style.tool("shellcheck").source == "Makefile:2 runs shellcheck -x -e SC1091"
    assert style.tool("shfmt").options == ("-i", "2", "-ci")
    assert style.tool("shfmt").source.startswith(".pre-commit-config.yaml:6 pre-commit hook shfmt")


EDITORCONFIG = """root = true

[*]
charset = utf-8

[launch]
indent_style = space
indent_size = 2

[fetch]
indent_style = space
indent_size = 4

[*.{sh,bash}]
switch_case_indent = true

[[shell]]
space_redirects = true
"""


def test_editorconfig_sections_say_which_files_shfmt_formats_by_the_projects_rule(tmp_path):
    write(tmp_path, {".editorconfig": EDITORCONFIG, "launch": "#!/bin/bash\n", "fetch": "#!/bin/bash\n"})
    configs = editorconfig.load(tmp_path, (".editorconfig",))
    launch = editorconfig.applied(configs, "launch")
    assert launch.keys["indent_size"] == ("2", ".editorconfig:8")
    assert editorconfig.applied(configs, "fetch").keys["indent_size"] == ("4", ".editorconfig:12")
    assert editorconfig.applied(configs, "lib/x.bash").keys["switch_case_indent"] == ("true", ".editorconfig:15")
    assert "indent_size" not in editorconfig.applied(configs, "other").keys
    style = project_style(tmp_path)
    assert style.own_setting("shfmt", "launch").startswith("indent_size = 2 (.editorconfig:8)")
    assert style.own_setting("shfmt", "docs/notes.txt").startswith("space_redirects")  # [[shell]]: any script


def test_editorconfig_without_shell_keys_leaves_shfmt_at_its_defaults(tmp_path):
    write(tmp_path, {".editorconfig": "root = true\n[*]\ncharset = utf-8\n[*.nix]\nindent_size = 2\n"})
    style = project_style(tmp_path)
    assert style.own_setting("shfmt", "run.sh") == ""
    assert style.reads_itself("shfmt") == ()


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("*.sh", "a/b/c.sh", True),
        ("/top.sh", "top.sh", True),
        ("/top.sh", "a/top.sh", False),
        ("lib/**.sh", "lib/a/b.sh", True),
        ("{run,build}", "sub/run", True),
        ("file{1..3}", "file2", True),
        ("file{1..3}", "file4", False),
        ("[!a]x", "bx", True),
    ],
)
def test_editorconfig_globs(glob, path, matches):
    assert editorconfig.glob_matches(glob, path) is matches


def test_shellcheckrc_and_ruff_config_hold_their_files(tmp_path):
    write(
        tmp_path,
        {
            "tools/.shellcheckrc": "disable=SC2086\n",
            "pyproject.toml": "[project]\nname = 'x'\n\n[tool.ruff]\nline-length = 100\n",
            "sub/ruff.toml": "line-length = 80\n",
        },
    )
    style = project_style(tmp_path)
    assert style.own_setting("shellcheck", "tools/a.sh") == "tools/.shellcheckrc"
    assert style.own_setting("shellcheck", "bin/a.sh") == ""
    assert style.own_setting("ruff-check", "src/a.py") == "pyproject.toml:4 [tool.ruff]"
    assert style.own_setting("ruff-check", "sub/deep/b.py") == "sub/ruff.toml:1"


def test_a_pyproject_without_tool_ruff_is_not_a_ruff_setting(tmp_path):
    write(tmp_path, {"pyproject.toml": "[project]\nname = 'x'\n"})
    assert project_style(tmp_path).own_setting("ruff-check", "a.py") == ""


def test_the_nix_reader_reports_the_line_of_what_it_cannot_read():
    with pytest.raises(NixSyntaxError) as caught:
        bindings("{\n  a = 1;\n  b = ;\n}\n")
    assert caught.value.line == 3
    found = {".".join(b.path): b.definition.value for b in bindings('{ a.b = "x${y}"; c = [ 1 2 ] ++ [ 3 ]; }')}
    assert found["c"] == [1, 2, 3]
    assert isinstance(found["a.b"], Unknown) and found["a.b"].text == '"x${y}"'


def test_each_binding_has_its_line_its_source_as_written_and_indented_strings_as_nix_reads_them():
    text = (
        "{ name, ... }:\n"
        "{\n"
        "  a = (x) ++ (y);\n"
        "  b = (import ./t.nix).options;\n"
        "  settings.formatter.${name}.options = [ ];\n"
        "  s = ''\n"
        "      first\n"
        "        second\n"
        "    '';\n"
        "}\n"
    )
    found = {".".join(b.path): b for b in bindings(text)}
    assert (found["a"].line, found["a"].text) == (3, "(x) ++ (y)")
    assert (found["b"].line, found["b"].text) == (4, "(import ./t.nix).options")
    assert found["settings.formatter.${name}.options"].line == 5
    assert (found["s"].line, found["s"].definition.value) == (6, "first\n  second\n")


# Every construct the reader meets in treefmt-nix files, to corrupt below.
CORRUPTIBLE = """{ pkgs, lib ? null, ... }@args:
let
  opts = [ "-i" "2" ] ++ lib.optional true "-ci";
  inherit (lib) mkForce;
in
rec {
  /* block */ projectRootFile = "flake.nix"; # comment
  programs.shfmt = { enable = !false; indent_size = -4; };
  settings.formatter."${"shfmt"}".options = mkForce (opts ++ [ "-s" ]);
  settings.formatter.x = lib.mkIf (args ? pkgs) { command = "${pkgs.shfmt}/bin/shfmt"; includes = [ ./a/b.sh ]; };
  script = ''
    echo ''${x} '''
  '';
  y = if a.b or c then x: x else with pkgs; assert true; 1.5e3 // { z = https://e.org/x?y=1; };
}
"""


@pytest.mark.parametrize("how", ["cut", "deleted", "inserted"])
def test_corrupted_nix_is_a_syntax_error_with_its_line_never_a_crash(how):
    """Fuzzing: every prefix, every one-character deletion, and a brace, quote or $ inserted at every place."""
    assert bindings(CORRUPTIBLE)
    lines = CORRUPTIBLE.count("\n") + 1
    if how == "cut":
        texts = [CORRUPTIBLE[:i] for i in range(len(CORRUPTIBLE))]
    elif how == "deleted":
        texts = [CORRUPTIBLE[:i] + CORRUPTIBLE[i + 1 :] for i in range(len(CORRUPTIBLE))]
    else:
        texts = [CORRUPTIBLE[:i] + c + CORRUPTIBLE[i:] for i in range(len(CORRUPTIBLE)) for c in "{\"$'"]
    failed = 0
    for text in texts:
        try:
            bindings(text)
        except NixSyntaxError as exc:
            failed += 1
            assert 1 <= exc.line <= lines and exc.message, text
    assert failed > len(texts) // 4  # the corruption is seen, not read as something else


@pytest.mark.parametrize(
    "text",
    [
        "{\n" + "a = { " * 3000 + "b = 1;" + " };" * 3000 + " }",
        "{\n a = " + "[ " * 3000 + "]" * 3000 + "; }",
        '{\n a = "' + '${"' * 3000 + '"}' * 3000 + '"; }',
    ],
)
def test_nix_nested_deeper_than_python_reads_is_a_syntax_error_and_a_note(tmp_path, text):
    with pytest.raises(NixSyntaxError, match="nested too deeply"):
        bindings(text)
    write(tmp_path, {"treefmt.nix": text})
    assert any("ccvm cannot read this Nix (nested too deeply" in note for note in project_style(tmp_path).notes)
