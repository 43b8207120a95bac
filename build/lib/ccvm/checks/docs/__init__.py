"""An mdBook book read the way mdBook and mdbook-linkcheck2 read it: its
book.toml, SUMMARY.md, ``{{#include}}`` directives, heading ids, and the
real mdBook build."""
