"""Blob storage for bundles, build logs, job results and job logs.

The database stores only keys (`bundles/<function>.zip`), never paths, so every API and
worker machine resolves them against a store they all reach. `file://` stores live in a
directory (local, or a shared mount such as NFS on a cluster); `s3://bucket/prefix` stores
in a bucket of an S3-compatible store (`s3_blobstore.py`). Blobs hold every user's
bundles and results and jobs run as another user than the service, so the store's
directories and files are private to the service's user, and objects in a bucket are as
private as the bucket.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import urlparse

if TYPE_CHECKING:
    from .s3_blobstore import S3BlobStore

CHUNK_SIZE = 1024 * 1024
PRIVATE_DIR_MODE = 0o700  # files are private already: mkstemp creates them 0600


class Readable(Protocol):
    """What `put_stream` reads from: a binary file, or anything else with its `read`."""

    def read(self, size: int, /) -> bytes: ...


class BlobReader(Protocol):
    """A blob opened for reading: read it in chunks (`read()` reads the rest), then close."""

    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BlobSlice:
    data: bytes
    # The blob's size when read; 0 when it does not exist.
    size: int


class BlobStore(Protocol):
    def put_stream(self, key: str, stream: Readable, max_bytes: int | None = None) -> int: ...

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def open(self, key: str) -> BlobReader | None: ...

    def read_slice(self, key: str, offset: int = 0, limit: int | None = None) -> BlobSlice: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> None: ...


class BlobTooLarge(Exception):
    """A stream ran past the byte limit given to `put_stream`; nothing was stored."""


def bundle_key(function_id: str) -> str:
    return f"bundles/{function_id}.zip"


def build_log_key(function_id: str) -> str:
    return f"build-logs/{function_id}.log"


def job_prefix(function_id: str, job_id: str) -> str:
    return f"jobs/{function_id}/{job_id}/"


def job_result_key(function_id: str, job_id: str) -> str:
    return job_prefix(function_id, job_id) + "result"


def job_log_key(function_id: str, job_id: str) -> str:
    return job_prefix(function_id, job_id) + "log.ndjson"


def function_jobs_prefix(function_id: str) -> str:
    return f"jobs/{function_id}/"


class FileBlobStore:
    """Blobs as files under one root directory; writes are atomic renames."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        relative = PurePosixPath(key)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"invalid blob key: {key!r}")
        return self.root.joinpath(*relative.parts)

    def put_stream(self, key: str, stream: Readable, max_bytes: int | None = None) -> int:
        """Copy `stream` into the blob `key`, refusing more than `max_bytes`; return the size."""
        target = self.path(key)
        target.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        written = 0
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{uuid.uuid4().hex}")
        try:
            with os.fdopen(fd, "wb") as handle:
                while chunk := stream.read(CHUNK_SIZE):
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise BlobTooLarge(f"more than {max_bytes} bytes")
                    handle.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return written

    def put(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{uuid.uuid4().hex}")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)

    def get(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def open(self, key: str) -> BinaryIO | None:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError:
            return None

    def read_slice(self, key: str, offset: int = 0, limit: int | None = None) -> BlobSlice:
        """Up to `limit` bytes of the blob `key` from `offset` (all of them for None)."""
        handle = self.open(key)
        if handle is None:
            return BlobSlice(b"", 0)
        with handle:
            blob_size = os.fstat(handle.fileno()).st_size
            handle.seek(min(offset, blob_size))
            data = handle.read(-1 if limit is None else limit)
        return BlobSlice(data, blob_size)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        target = self.path(prefix.rstrip("/"))
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def open_blob_store(url: str) -> FileBlobStore | S3BlobStore:
    """The store named by `url`: `file:///directory` or `s3://bucket/prefix`."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"no bucket in the blob store URL {url!r}")
        # Imported here: boto3 is needed only by a service that uses it.
        from .s3_blobstore import S3BlobStore

        return S3BlobStore(parsed.netloc, parsed.path)
    if parsed.scheme != "file":
        raise ValueError(f"unsupported blob store URL scheme {parsed.scheme!r} in {url!r}")
    root = Path(parsed.path)
    root.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return FileBlobStore(root)
