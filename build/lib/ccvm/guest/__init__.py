"""The embedded default guest: init, stub program and the files around them."""
