# ccvm itself, built from pyproject.toml.  Its tests boot QEMU and run Nix,
# which the build sandbox cannot, so the build only checks that it imports.
{
  lib,
  python3Packages,
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
  ];

  doCheck = false;
  pythonImportsCheck = [ "ccvm" ];

  meta = {
    inherit (project) description;
    license = lib.licenses.mit;
    mainProgram = "ccvm";
  };
}
