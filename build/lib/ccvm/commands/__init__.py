"""One module per ``ccvm`` subcommand; each has ``register(subparsers)``."""
