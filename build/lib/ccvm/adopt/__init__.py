"""``ccvm init``: adopt ccvm in an existing repository.

discover.py reads what the project has (its flake, book, tests, shell and
Nix files, formatter settings), render.py turns that into the matrix files
and a noxfile, write.py writes them without touching a file the project
already has, and renders the generated workflow."""
