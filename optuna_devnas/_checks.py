"""Argument checks every public constructor shares, with messages that name the argument.

One place for "Got X, but expected Y" about the values many modules take (counts, sizes), so
the rule (``bool`` is no integer here, even though Python says it is) and the wording agree
everywhere.
"""

from __future__ import annotations

from typing import Any


def check_positive_int(value: Any, argument: str) -> int:
    """``value`` if it is an integer >= 1 (not a ``bool``), else ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Got {argument}={value!r}, but expected a positive integer.")
    return value
