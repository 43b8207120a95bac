# One matrix check as a derivation: run its ccvm command with QEMU on PATH;
# the reports (JUnit, console logs) become the output.  A kvm cell carries
# requiredSystemFeatures = [ "kvm" ], so Nix schedules it only on a builder
# with /dev/kvm.
#
# Inside the build sandbox there is no network for ccvm's apt-get asset
# fetch, so the guest kernel and busybox come from nixpkgs through ccvm's
# CCVM_KERNEL_<ARCH> / CCVM_BUSYBOX_<ARCH> / CCVM_MODULES_<ARCH> overrides.
#
# The kernel's image and modules are found through the kernel derivation's
# own attributes, as nixpkgs lays them out:
#   target         the image's file name in the kernel's `out` (bzImage, Image);
#                  on the derivation since nixpkgs 26.11, before that only in
#                  stdenv.hostPlatform.linux-kernel.target (now removed)
#   modules        the output holding lib/modules (since nixpkgs 25.11; `out` before)
#   modDirVersion  the name of the directory under lib/modules
{
  pkgs,
  ccvm,
  src,
}:
check:
let
  arch = builtins.head (builtins.split "-" check.system);
  archVar = if arch == "x86_64" then "X86_64" else "AARCH64";
  kernel = pkgs.linux;
  kernelImage = kernel.target or pkgs.stdenv.hostPlatform.linux-kernel.target;
  modulesTree = kernel.modules or kernel.out;
in
pkgs.runCommand check.name
  {
    nativeBuildInputs = [
      ccvm
      pkgs.qemu
    ];
    requiredSystemFeatures = check.features;
    CCVM_MATRIX = "${src}/matrix";
    "CCVM_KERNEL_${archVar}" = "${kernel.out}/${kernelImage}";
    "CCVM_BUSYBOX_${archVar}" = "${pkgs.pkgsStatic.busybox}/bin/busybox";
    # The kernel's own modules (virtio, 9p, overlay, fw_cfg where not built
    # in; .ko.zst in current nixpkgs); ccvm reads only those matrix/guest.yaml
    # names and their depends.
    "CCVM_MODULES_${archVar}" = "${modulesTree}/lib/modules/${kernel.modDirVersion}";
  }
  ''
    export HOME="$TMPDIR" XDG_CACHE_HOME="$TMPDIR/cache"
    mkdir -p "$out"
    cd "$out"
    ${pkgs.lib.escapeShellArgs check.command}
  ''
