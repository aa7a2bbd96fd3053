"""Reading part of a blob: its size, and bytes from an offset, without loading it whole.

Job logs reach 10 MiB an attempt and results 64 MiB; a page that shows their end, or
polls for what was added, reads only that. A store without `open` (the protocol
requires only `get`) is read whole and sliced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from flask import current_app


@dataclass(frozen=True)
class BlobSlice:
    data: bytes
    # The blob's size when read; 0 when it does not exist.
    size: int


def read_slice(key: str, offset: int = 0, limit: int | None = None) -> BlobSlice:
    """Up to `limit` bytes of the blob `key` from `offset` (all of them for None)."""
    store = current_app.extensions["blobstore"]
    if not hasattr(store, "open"):
        whole: bytes = store.get(key) or b""
        end = None if limit is None else offset + limit
        return BlobSlice(whole[offset:end], len(whole))
    handle = store.open(key)
    if handle is None:
        return BlobSlice(b"", 0)
    with handle:
        blob_size = os.fstat(handle.fileno()).st_size
        handle.seek(min(offset, blob_size))
        data = handle.read(-1 if limit is None else limit)
    return BlobSlice(data, blob_size)
