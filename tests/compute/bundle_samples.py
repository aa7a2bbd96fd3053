"""Functions bundled by the bundle tests: a plain module shipped with include_modules."""

from __future__ import annotations

import math

OFFSET = 100


def triple(x: int) -> int:
    return x * 3


def uses_import(x: int) -> float:
    return math.sqrt(x * 8)


def uses_global(x: int) -> int:
    return x + OFFSET


def make_adder(n: int):
    def add(x: int) -> int:
        return x + n

    return add
