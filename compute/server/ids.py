"""Identifiers that sort by creation time, so keyset pages and B-tree inserts stay local."""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_sequence = 0


def new_ids(count: int) -> list[str]:
    """Return `count` new 32-hex-digit ids, strictly increasing within this process.

    Layout: 48 bits of milliseconds, 32 bits of a per-millisecond sequence, 48 random bits.
    Ids made in one call keep their order, which keeps a bulk submission's input order.
    """
    global _last_ms, _sequence
    with _lock:
        now_ms = int(time.time() * 1000)
        if now_ms > _last_ms:
            _last_ms, _sequence = now_ms, 0
        first = _sequence
        _sequence += count
        ms = _last_ms
    noise = os.urandom(6 * count)
    return [
        f"{ms:012x}{first + index:08x}{noise[index * 6 : index * 6 + 6].hex()}"
        for index in range(count)
    ]


def new_id() -> str:
    """Return one new id."""
    return new_ids(1)[0]
