"""Blob storage for bundles, build logs, job results and job logs.

The database stores only keys (`bundles/<function>.zip`), never paths, so every API and
worker machine resolves them against a store they all reach. `file://` stores live in a
directory (local, or a shared mount such as NFS on a cluster); other schemes can be added
behind the same interface. Blobs hold every user's bundles and results and jobs run
as another user than the service, so the store's directories and files are private to
the service's user.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

CHUNK_SIZE = 1024 * 1024
PRIVATE_DIR_MODE = 0o700  # files are private already: mkstemp creates them 0600


class Readable(Protocol):
    """What `put_stream` reads from: a binary file, or anything else with its `read`."""

    def read(self, size: int, /) -> bytes: ...


class BlobStore(Protocol):
    def put_stream(self, key: str, stream: Readable, max_bytes: int | None = None) -> int: ...

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...

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

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        target = self.path(prefix.rstrip("/"))
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def open_blob_store(url: str) -> FileBlobStore:
    """The store named by `url`; only `file://` is built in."""
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise ValueError(f"unsupported blob store URL scheme {parsed.scheme!r} in {url!r}")
    root = Path(parsed.path)
    root.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return FileBlobStore(root)
