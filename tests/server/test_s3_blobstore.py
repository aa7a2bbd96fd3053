"""The blob stores behave alike: the same tests run on the file store and the S3 store.

The S3 store talks to a real S3-protocol server (moto's, over HTTP on loopback), set up
the standard way through `AWS_*` environment variables.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError

from compute.server import s3_blobstore
from compute.server.blobstore import (
    CHUNK_SIZE,
    BlobStore,
    BlobTooLarge,
    FileBlobStore,
    open_blob_store,
)
from compute.server.s3_blobstore import S3BlobStore
from tests.s3 import HOST, S3Server, free_port, running_s3_server
from worker.bundle_fetch import fetched_bundle

MB = 1024 * 1024
LARGE_BYTES = 20 * MB
# A down or silent store must fail the call in seconds, not hang it.
PROMPT_FAILURE_SECONDS = 10


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with running_s3_server() as server:
        yield server


@pytest.fixture
def s3_environment(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "file":
        return open_blob_store(f"file://{tmp_path / 'blobs'}")
    server: S3Server = request.getfixturevalue("s3_environment")
    # A prefix per test: the tests share the bucket, never each other's blobs.
    found = open_blob_store(server.blob_url(f"tests/{uuid.uuid4().hex}"))
    assert isinstance(found, S3BlobStore)
    return found


class GeneratedStream:
    """`size` bytes made as they are read, counting the reads; none is kept.

    `at_end` is called as the last bytes are read, to look at the store meanwhile."""

    def __init__(self, size: int, at_end: Callable[[], None] | None = None) -> None:
        self.remaining = size
        self.digest = hashlib.sha256()
        self.largest_read = 0
        self.reads = 0
        self._at_end = at_end

    def read(self, size: int, /) -> bytes:
        self.reads += 1
        self.largest_read = max(self.largest_read, size)
        chunk = (self.reads.to_bytes(8, "big") * (CHUNK_SIZE // 8))[: min(size, self.remaining)]
        self.remaining -= len(chunk)
        self.digest.update(chunk)
        if chunk and not self.remaining and self._at_end is not None:
            self._at_end()
        return chunk


def bytes_sent_so_far(store: BlobStore, key: str) -> int:
    """How much of an unfinished `put_stream` of `key` the store has received."""
    if isinstance(store, S3BlobStore):
        client, object_key = store._client, store.object_key(key)
        uploads = client.list_multipart_uploads(Bucket=store.bucket, Prefix=object_key)
        return sum(
            part["Size"]
            for upload in uploads.get("Uploads", [])
            for part in client.list_parts(
                Bucket=store.bucket, Key=object_key, UploadId=upload["UploadId"]
            ).get("Parts", [])
        )
    assert isinstance(store, FileBlobStore)
    # The file store writes a temporary file beside the blob, renamed once whole.
    return sum(found.stat().st_size for found in store.path(key).parent.glob(".*"))


def streamed_digest(store: BlobStore, key: str) -> tuple[int, str]:
    handle = store.open(key)
    assert handle is not None
    digest, size = hashlib.sha256(), 0
    try:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    finally:
        handle.close()
    return size, digest.hexdigest()


def test_put_get_open_and_delete(store: BlobStore) -> None:
    store.put("jobs/f/j/result", b"the result")
    assert store.get("jobs/f/j/result") == b"the result"
    handle = store.open("jobs/f/j/result")
    assert handle is not None
    try:
        assert handle.read(4) == b"the "
        assert handle.read() == b"result"
    finally:
        handle.close()

    store.put("jobs/f/j/result", b"replaced")
    assert store.get("jobs/f/j/result") == b"replaced"
    store.delete("jobs/f/j/result")
    assert store.get("jobs/f/j/result") is None


def test_put_stream_returns_the_size(store: BlobStore) -> None:
    stream = GeneratedStream(3 * MB + 5)
    assert store.put_stream("bundles/f.zip", stream, max_bytes=4 * MB) == 3 * MB + 5
    assert streamed_digest(store, "bundles/f.zip") == (3 * MB + 5, stream.digest.hexdigest())


def test_a_bundle_is_fetched_as_a_file_never_whole_in_memory(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = GeneratedStream(LARGE_BYTES)
    store.put_stream("bundles/f.zip", stream)
    monkeypatch.setattr(store, "get", lambda key: pytest.fail("the bundle was read whole"))
    scratch = tmp_path / "scratch"

    with fetched_bundle(store, "bundles/f.zip", scratch) as path:
        assert path is not None
        assert path.stat().st_size == LARGE_BYTES
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                digest.update(chunk)
        assert digest.hexdigest() == stream.digest.hexdigest()

    # A copy made for the build is gone with the block; a shared file is left alone.
    assert not scratch.exists() or not any(scratch.iterdir())
    assert path.exists() is isinstance(store, FileBlobStore)
    with fetched_bundle(store, "bundles/missing.zip", scratch) as missing:
        assert missing is None
    with fetched_bundle(store, None, scratch) as unnamed:
        assert unnamed is None


def test_read_slice(store: BlobStore) -> None:
    store.put("log", b"0123456789")
    part = store.read_slice("log", 2, 3)
    assert (part.data, part.size) == (b"234", 10)
    assert store.read_slice("log").data == b"0123456789"
    assert (store.read_slice("log", 0, 0).data, store.read_slice("log", 0, 0).size) == (b"", 10)
    assert (store.read_slice("log", 8).data, store.read_slice("log", 8).size) == (b"89", 10)
    past_end = store.read_slice("log", 20, 5)
    assert (past_end.data, past_end.size) == (b"", 10)
    store.put("empty", b"")
    assert (store.read_slice("empty", 0, 5).data, store.read_slice("empty", 0, 5).size) == (b"", 0)


def test_missing_keys(store: BlobStore) -> None:
    assert store.get("jobs/none/result") is None
    assert store.open("jobs/none/result") is None
    missing = store.read_slice("jobs/none/log", 0, 10)
    assert (missing.data, missing.size) == (b"", 0)
    store.delete("jobs/none/result")
    store.delete_prefix("jobs/none/")


def test_delete_prefix_deletes_only_under_it(store: BlobStore) -> None:
    for name in ("jobs/f/a/result", "jobs/f/a/log.ndjson", "jobs/f/b/result", "jobs/g/a/x"):
        store.put(name, name.encode())
    store.delete_prefix("jobs/f/a/")
    assert store.get("jobs/f/a/result") is None
    assert store.get("jobs/f/a/log.ndjson") is None
    assert store.get("jobs/f/b/result") == b"jobs/f/b/result"
    store.delete_prefix("jobs/f/")
    assert store.get("jobs/f/b/result") is None
    assert store.get("jobs/g/a/x") == b"jobs/g/a/x"


@pytest.mark.parametrize("size", [2 * MB, LARGE_BYTES], ids=["one-part", "multipart"])
def test_put_stream_past_max_bytes_stores_nothing(store: BlobStore, size: int) -> None:
    store.put("bundles/f.zip", b"the earlier upload")
    with pytest.raises(BlobTooLarge):
        store.put_stream("bundles/f.zip", GeneratedStream(size), max_bytes=size - 1)
    assert store.get("bundles/f.zip") == b"the earlier upload"
    with pytest.raises(BlobTooLarge):
        store.put_stream("bundles/new.zip", GeneratedStream(size), max_bytes=size // 2)
    assert store.get("bundles/new.zip") is None
    if isinstance(store, S3BlobStore):
        # No multipart upload is left behind, holding parts the bucket is billed for.
        uploads = store._client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
        assert not uploads.get("Uploads")


def test_large_stream_is_sent_while_it_is_read(store: BlobStore) -> None:
    sent_before_the_end: list[int] = []
    stream = GeneratedStream(
        LARGE_BYTES,
        lambda: sent_before_the_end.append(bytes_sent_so_far(store, "bundles/large.zip")),
    )
    size = store.put_stream("bundles/large.zip", stream, max_bytes=LARGE_BYTES)
    assert size == LARGE_BYTES
    # Read a chunk at a time, and stored as it came: the whole was never held at once.
    assert stream.largest_read <= CHUNK_SIZE
    assert stream.reads >= LARGE_BYTES // CHUNK_SIZE
    assert sent_before_the_end and sent_before_the_end[0] >= LARGE_BYTES // 4
    assert streamed_digest(store, "bundles/large.zip") == (LARGE_BYTES, stream.digest.hexdigest())


def test_delete_prefix_deletes_more_than_one_batch(
    s3_environment: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_blob_store(s3_environment.blob_url(f"batches/{uuid.uuid4().hex}"))
    assert isinstance(store, S3BlobStore)
    # Small batches, so a few keys take more than one.
    monkeypatch.setattr(s3_blobstore, "DELETE_BATCH", 10)
    count = 25
    for index in range(count):
        store.put(f"jobs/f/{index}/result", b"x")
    store.put("jobs/g/kept", b"kept")
    store.delete_prefix("jobs/f/")
    assert s3_environment.object_keys(store.prefix) == [store.prefix + "jobs/g/kept"]


def test_the_url_names_the_bucket_and_prefix(s3_environment: S3Server) -> None:
    store = open_blob_store("s3://some-bucket/compute/blobs/")
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.object_key("bundles/f.zip")) == (
        "some-bucket",
        "compute/blobs/bundles/f.zip",
    )
    bare = open_blob_store("s3://some-bucket")
    assert isinstance(bare, S3BlobStore) and bare.object_key("log") == "log"
    with pytest.raises(ValueError):
        open_blob_store("s3:///no-bucket")
    with pytest.raises(ValueError):
        bare.object_key("../escape")


def test_a_store_named_by_host_name_is_addressed_by_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A compose file's MinIO is `http://minio:9000`: the bucket goes in the path, since a
    # name such as `compute.minio` resolves nowhere.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.invalid:9000")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    store = open_blob_store("s3://compute/blobs")
    assert isinstance(store, S3BlobStore)
    sent: list[str] = []

    def look(request: Any, **_: Any) -> None:
        sent.append(request.url)
        raise LookedAt

    store._client.meta.events.register("before-send.s3", look)
    with pytest.raises(LookedAt):
        store.get("bundles/f.zip")
    assert sent == ["http://minio.invalid:9000/compute/blobs/bundles/f.zip"]


class LookedAt(Exception):
    """Stops a request once it has been looked at, before it is sent."""


def test_objects_are_stored_under_the_prefix(s3_environment: S3Server) -> None:
    store = open_blob_store(s3_environment.blob_url("under/here"))
    store.put("bundles/f.zip", b"zip")
    assert "under/here/bundles/f.zip" in s3_environment.object_keys("under/")
    store.delete_prefix("bundles/")


def test_a_store_that_is_down_fails_promptly(monkeypatch: pytest.MonkeyPatch) -> None:
    closed_port = free_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{HOST}:{closed_port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "compute-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "compute-test-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    store = open_blob_store("s3://down/prefix")
    for call in (
        lambda: store.put("jobs/f/j/result", b"result"),
        lambda: store.get("jobs/f/j/result"),
        lambda: store.put_stream("bundles/f.zip", GeneratedStream(MB)),
    ):
        started = time.monotonic()
        with pytest.raises(BotoCoreError):
            call()
        assert time.monotonic() - started < PROMPT_FAILURE_SECONDS


def test_a_store_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fault injection: a shorter read timeout than the service's, so the test is quick.
    monkeypatch.setattr(s3_blobstore, "READ_TIMEOUT_SECONDS", 1)
    with socket.socket() as silent:
        # Connections are accepted by the kernel and then never answered.
        silent.bind((HOST, 0))
        silent.listen(16)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{HOST}:{silent.getsockname()[1]}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "compute-test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "compute-test-secret")
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        store = open_blob_store("s3://silent/prefix")
        started = time.monotonic()
        with pytest.raises(BotoCoreError):
            store.get("jobs/f/j/result")
        assert time.monotonic() - started < PROMPT_FAILURE_SECONDS


def test_the_file_store_needs_no_boto3(tmp_path: Path) -> None:
    code = (
        "import sys; from compute.server.blobstore import open_blob_store; "
        f"open_blob_store('file://{tmp_path}'); assert 'boto3' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_file_store_is_a_blob_store(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(f"file://{tmp_path}"), FileBlobStore)
