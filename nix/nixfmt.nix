# The RFC 166 Nix formatter (nixfmt), by its name in the nixpkgs at hand:
# `nixfmt` since nixpkgs 25.11 (where `nixfmt-rfc-style` became a deprecated
# alias, since removed); before that `nixfmt` was the classic formatter and
# the RFC one was `nixfmt-rfc-style`.  The release decides, so neither
# deprecated name is ever evaluated (each prints a warning).
{ pkgs }:
if pkgs.lib.versionAtLeast pkgs.lib.trivial.release "25.11" then
  pkgs.nixfmt
else
  pkgs.nixfmt-rfc-style
