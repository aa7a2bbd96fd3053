"""Blobs in a bucket of any S3-compatible store (AWS, MinIO, Ceph, R2), through boto3.

boto3 finds the endpoint, credentials and region the standard way (`AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, or the shared config files),
so nothing here reads them. Objects take the bucket's own access policy: no ACL is ever
set and no presigned URL made, so blobs stay as private as the bucket. Timeouts and
retries are short: a store that is down fails the call in seconds, and the caller (an
upload, a job's attempt) fails with it rather than hanging on it.
"""

from __future__ import annotations

import logging
from contextlib import closing
from typing import IO, TYPE_CHECKING, cast

from .blobstore import CHUNK_SIZE, BlobReader, BlobSlice, BlobTooLarge, Readable

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 10
# Standard mode retries throttling and transient errors with a backoff; few attempts,
# so a store that is down is reported within seconds.
MAX_ATTEMPTS = 3
# Parts of a multipart upload (S3's smallest): the memory `put_stream` holds, whatever
# the blob's size.
PART_BYTES = 5 * 1024 * 1024
DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
EMPTY_RANGE_CODE = "InvalidRange"


class S3BlobStore:
    """Blobs as objects under `prefix` in `bucket`; an object appears only once whole."""

    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client = client or _default_client()

    @property
    def endpoint_url(self) -> str:
        """Where the store is reached, as the client resolved it from its settings."""
        return str(self._client.meta.endpoint_url)

    def object_key(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid blob key: {key!r}")
        return self.prefix + key

    def put_stream(self, key: str, stream: Readable, max_bytes: int | None = None) -> int:
        """Copy `stream` into the blob `key`, refusing more than `max_bytes`; return the size.

        Raises:
            BlobTooLarge: the stream ran past `max_bytes`; the upload was aborted, so the
                blob is as it was before.
        """
        from boto3.s3.transfer import TransferConfig

        counted = _CountingReader(stream, max_bytes)
        # In the caller's thread, a part at a time: the stream may be bound to it (a
        # Flask request's body is), and one part is all the memory the upload holds.
        transfer = TransferConfig(
            multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, use_threads=False
        )
        # A failed multipart upload (the reader's BlobTooLarge included) is aborted by
        # the transfer itself: no part of it is left stored.
        # Typed as a file, but only `read` is used of a stream that cannot seek.
        source = cast("IO[bytes]", counted)
        self._client.upload_fileobj(source, self.bucket, self.object_key(key), Config=transfer)
        return counted.size

    def put(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)

    def get(self, key: str) -> bytes | None:
        body = self.open(key)
        if body is None:
            return None
        with closing(body):
            return body.read()

    def open(self, key: str) -> BlobReader | None:
        from botocore.exceptions import ClientError

        try:
            found = self._client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if _error_code(error) in MISSING_CODES:
                return None
            raise
        return found["Body"]

    def read_slice(self, key: str, offset: int = 0, limit: int | None = None) -> BlobSlice:
        from botocore.exceptions import ClientError

        if limit == 0:
            return BlobSlice(b"", self._size(key))
        last = "" if limit is None else str(offset + limit - 1)
        try:
            found = self._client.get_object(
                Bucket=self.bucket, Key=self.object_key(key), Range=f"bytes={offset}-{last}"
            )
        except ClientError as error:
            code = _error_code(error)
            if code in MISSING_CODES:
                return BlobSlice(b"", 0)
            if code == EMPTY_RANGE_CODE:  # from past the end, or of an empty blob
                return BlobSlice(b"", self._size(key))
            raise
        with found["Body"] as body:
            data = body.read()
        # "bytes 0-99/1234": the blob's whole size follows the slash.
        content_range = found.get("ContentRange", "")
        size = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else len(data)
        return BlobSlice(data, size)

    def delete(self, key: str) -> None:
        # Deleting a missing key succeeds in S3, as unlinking one does in the file store.
        self._client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def delete_prefix(self, prefix: str) -> None:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=self.object_key(prefix),
            PaginationConfig={"PageSize": DELETE_BATCH},
        )
        for page in pages:
            keys: list[ObjectIdentifierTypeDef] = [
                {"Key": found["Key"]} for found in page.get("Contents", [])
            ]
            if keys:
                answer = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                )
                for failed in answer.get("Errors", []):
                    logger.warning("could not delete blob %s: %s", failed.get("Key"), failed)

    def _size(self, key: str) -> int:
        from botocore.exceptions import ClientError

        try:
            found = self._client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if _error_code(error) in MISSING_CODES:
                return 0
            raise
        return found["ContentLength"]


class _CountingReader:
    """Reads `stream` for the upload, counting, and stops it past `max_bytes`."""

    def __init__(self, stream: Readable, max_bytes: int | None) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes, fewer only at the end: every part but the last of a
        multipart upload must be whole. The source is read a chunk at a time."""
        chunks: list[bytes] = []
        wanted = size if size >= 0 else CHUNK_SIZE
        while wanted > 0 and (chunk := self._stream.read(min(wanted, CHUNK_SIZE))):
            self.size += len(chunk)
            if self._max_bytes is not None and self.size > self._max_bytes:
                raise BlobTooLarge(f"more than {self._max_bytes} bytes")
            chunks.append(chunk)
            wanted -= len(chunk)
        return b"".join(chunks)


def _default_client() -> S3Client:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
    )
    return boto3.client("s3", config=config)


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", {})
    return str(response.get("Error", {}).get("Code", ""))
