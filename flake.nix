{
  description = "ccvm: multi-arch test-matrix runner and CI generator for QEMU VM sandboxes";

  # nixos-unstable: it has mdbook-linkcheck2 (nixpkgs dropped mdbook-linkcheck).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems =
        f:
        builtins.listToAttrs (
          map (system: {
            name = system;
            value = f system nixpkgs.legacyPackages.${system};
          }) systems
        );
      # Written by `ccvm generate` from matrix/: the same cells the nox sessions run.
      checksJson = builtins.fromJSON (builtins.readFile ./ci/flake-checks.json);
    in
    {
      packages = forAllSystems (
        system: pkgs: rec {
          ccvm = pkgs.callPackage ./nix/package.nix { src = self; };
          default = ccvm;
        }
      );

      devShells = forAllSystems (
        system: pkgs: {
          default = import ./nix/devshell.nix {
            inherit pkgs;
            ccvm = self.packages.${system}.ccvm;
          };
        }
      );

      formatter = forAllSystems (system: pkgs: import ./nix/nixfmt.nix { inherit pkgs; });

      checks = forAllSystems (
        system: pkgs:
        import ./nix/checks.nix {
          inherit checksJson system;
          mkCheck = import ./nix/mk-check.nix {
            inherit pkgs;
            ccvm = self.packages.${system}.ccvm;
            src = self;
          };
        }
      );
    };
}
