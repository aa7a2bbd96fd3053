"""Functions the execution tests ship to the worker as source bundles."""

from __future__ import annotations


def double(x):
    return x * 2


def explode(message):
    print("about to fail")
    raise ValueError(message)


def raw_bytes(n):
    return bytes(range(n))
