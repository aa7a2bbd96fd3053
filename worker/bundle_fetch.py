"""A function's bundle as a file on this machine, whichever store holds it.

Bundles may be hundreds of megabytes, so they are never read whole into memory: a bundle
in a bucket is streamed to a private temporary file in the worker's scratch directory,
and one in a shared directory is read where it lies.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from compute.server.blobstore import CHUNK_SIZE, BlobStore, FileBlobStore


@contextmanager
def fetched_bundle(
    store: BlobStore, key: str | None, scratch_root: Path | None
) -> Iterator[Path | None]:
    """Yield the path of the bundle `key`, or None when the store has no such blob.

    A copy is made in `scratch_root` (the system's temporary directory for None) and
    removed when the block ends.
    """
    if not key:
        yield None
        return
    if isinstance(store, FileBlobStore):
        path = store.path(key)
        yield path if path.is_file() else None
        return
    body = store.open(key)
    if body is None:
        yield None
        return
    if scratch_root is not None:
        scratch_root.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="bundle-", suffix=".zip", dir=scratch_root)
    copy = Path(name)
    try:
        with closing(body), os.fdopen(fd, "wb") as handle:
            shutil.copyfileobj(body, handle, CHUNK_SIZE)
        yield copy
    finally:
        copy.unlink(missing_ok=True)
