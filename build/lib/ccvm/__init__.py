"""ccvm: a multi-arch test-matrix runner and CI generator for QEMU VM sandboxes."""

__version__ = "0.1.0"
