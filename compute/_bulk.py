"""Turning the arguments of ``Function.map`` into the body of one bulk job request."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def bulk_arguments(
    args: Iterable[Any], iterargs: Iterable[Any] | None
) -> tuple[list[list[Any]], list[dict[str, Any]] | None]:
    """Return ``bulk_args`` and ``bulk_kwargs`` for :meth:`Function.map`."""
    items = list(args)
    extra = list(iterargs) if iterargs is not None else []
    if not extra:
        return [_spread(item) for item in items], None
    kinds = {isinstance(entry, Mapping) for entry in extra}
    if kinds == {True}:
        if len(extra) != len(items):
            raise ValueError(f"iterargs holds {len(extra)} keyword mappings for {len(items)} args")
        return [_spread(item) for item in items], [dict(entry) for entry in extra]
    if kinds == {True, False}:
        raise ValueError("iterargs must be all keyword mappings or all iterables, not a mix")
    columns = [list(entry) for entry in extra]
    for column in columns:
        if len(column) != len(items):
            raise ValueError(f"iterargs iterable of length {len(column)} for {len(items)} args")
    return [[item, *(column[i] for column in columns)] for i, item in enumerate(items)], None


def _spread(item: Any) -> list[Any]:
    if isinstance(item, list):
        return item
    return list(item) if isinstance(item, tuple) else [item]
