"""The terminal check: a launcher under a pseudo-terminal, its screen read
as a person sees it (``ccvm attest tty --auto``)."""
