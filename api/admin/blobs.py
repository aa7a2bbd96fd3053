"""Reading part of a blob: its size, and bytes from an offset, without loading it whole.

Job logs reach 10 MiB an attempt and results 64 MiB; a page that shows their end, or
polls for what was added, reads only that.
"""

from __future__ import annotations

from flask import current_app

from compute.server.blobstore import BlobSlice, BlobStore


def read_slice(key: str, offset: int = 0, limit: int | None = None) -> BlobSlice:
    """Up to `limit` bytes of the blob `key` from `offset` (all of them for None)."""
    store: BlobStore = current_app.extensions["blobstore"]
    return store.read_slice(key, offset, limit)
