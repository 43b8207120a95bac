# `nix develop`: everything the nox sessions and the docs need.
{
  pkgs,
  ccvm,
}:
pkgs.mkShell {
  inputsFrom = [ ccvm ];
  packages = [
    pkgs.qemu # qemu-system-x86_64 and qemu-system-aarch64
    pkgs.python3Packages.nox
    pkgs.shfmt
    pkgs.shellcheck
    (import ./nixfmt.nix { inherit pkgs; })
    pkgs.mdbook
    # nixpkgs replaced mdbook-linkcheck by mdbook-linkcheck2; older pins have only the former.
    (pkgs.mdbook-linkcheck2 or pkgs.mdbook-linkcheck)
  ];
}
