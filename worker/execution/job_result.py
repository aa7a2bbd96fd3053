"""A job's result as the worker holds it between the job's end and the blob store.

The value a job returns may be as large as `COMPUTE_MAX_RESULT_BYTES` (64 MB by default),
so the worker never reads it whole into memory: it copies the job's file into a spooled
temporary file of its own, which stays in memory while small (the common case, a few
bytes of JSON, costs no disk at all) and spills to an unnamed private file on the
worker's disk past `SPOOL_MEMORY_BYTES`. The store then takes a small one in one piece
and streams a large one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO

# A result up to this size is kept in memory; a larger one goes to disk.
SPOOL_MEMORY_BYTES = 1024 * 1024
# Read from the job's file a piece at a time: the memory a copy holds, whatever the size.
COPY_CHUNK_BYTES = 1024 * 1024
# The encoding tags of the bootstrap (`bootstrap.encode`): `j` JSON, `b` raw bytes,
# `s` bytes from `serialize()`, `n` None, which has no value to store.
TAG_NONE = b"n"


class JobResult:
    """The value a job returned: its one-byte encoding tag and the encoded value after it,
    held in a private spooled file. Close it once stored, or once it will not be.

    Attributes:
        tag: the encoding tag; empty when the job left an empty file.
        size: the bytes of the encoded value, the tag not counted.
    """

    def __init__(self, tag: bytes, spool: IO[bytes], size: int) -> None:
        self.tag = tag
        self.size = size
        self._spool = spool

    @classmethod
    def from_bytes(cls, data: bytes) -> JobResult:
        """A result of `data` (tag byte, then the value), spooled as a job's is: for tests."""
        tag, value = data[:1], data[1:]
        spool = new_spool(None)
        spool.write(value)
        return cls(tag, spool, len(value))

    @property
    def in_memory(self) -> bool:
        """Whether the value is held in memory, not on disk: the spool moves to disk the
        moment it holds more than SPOOL_MEMORY_BYTES, and never back."""
        return self.size <= SPOOL_MEMORY_BYTES

    @property
    def has_value(self) -> bool:
        """Whether there is a value to store: a None, or an empty file, has none."""
        return self.tag not in (b"", TAG_NONE)

    def stream(self) -> IO[bytes]:
        """The encoded value to read from its start; valid until `close`."""
        self._spool.seek(0)
        return self._spool

    def value_bytes(self) -> bytes:
        """The encoded value in one piece: for a result held in memory, or a test."""
        return self.stream().read()

    def close(self) -> None:
        """Let go of the value (a file on disk is removed as it closes); idempotent."""
        self._spool.close()

    def __enter__(self) -> JobResult:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def new_spool(directory: Path | None) -> IO[bytes]:
    """An empty spooled file that moves to an unnamed file of `directory` (the system's
    temporary directory for None), readable by the worker alone, past SPOOL_MEMORY_BYTES."""
    where = None if directory is None else str(directory)
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, dir=where)


def copy_capped(source: IO[bytes], target: IO[bytes], limit: int) -> int:
    """Copy `source` to its end into `target`, but never more than `limit` bytes; return
    how many were copied (`limit` when the source holds that many or more)."""
    copied = 0
    while copied < limit and (chunk := source.read(min(COPY_CHUNK_BYTES, limit - copied))):
        target.write(chunk)
        copied += len(chunk)
    return copied
