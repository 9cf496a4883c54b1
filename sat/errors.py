"""Exceptions that the CLI reports as one line on stderr with exit code 2."""
from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a missing file, a non-image, bad geometry, an unknown prompt.

    The message must be one self-contained line that names the bad value and what was expected.
    """
