"""The function every figure runs: it does nothing, so what is measured is the overhead."""

from __future__ import annotations


def noop(x: int) -> int:
    """Return the argument unchanged."""
    return x
