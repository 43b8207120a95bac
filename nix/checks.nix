# The flake's checks for one system, from the matrix's check list
# (ci/flake-checks.json, written by `ccvm generate`).  Pure: no nixpkgs, so
# the mapping can be evaluated and tested on its own (tests/test_flake_nix.py).
#
#   checksJson  the parsed JSON: { checks = [ { name, system, command, features } ... ] }
#   system      the Nix system whose checks to return, e.g. "x86_64-linux"
#   mkCheck     turns one entry into a derivation (nix/mk-check.nix)
{
  checksJson,
  system,
  mkCheck,
}:
let
  fields = [
    "name"
    "system"
    "command"
    "features"
  ];
  validated =
    check:
    let
      missing = builtins.filter (field: !(builtins.hasAttr field check)) fields;
    in
    if missing == [ ] then
      check
    else
      throw "ci/flake-checks.json: a check lacks ${builtins.concatStringsSep ", " missing}; run `ccvm generate`";
  forSystem = builtins.filter (check: check.system == system) (map validated checksJson.checks);
in
builtins.listToAttrs (
  map (check: {
    name = check.name;
    value = mkCheck check;
  }) forSystem
)
