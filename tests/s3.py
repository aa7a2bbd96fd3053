"""A local S3-protocol server for tests: moto's server app over real HTTP on loopback.

It runs in the test process, so the objects it holds outlive a `stop()`: a test can take
the store down (its port closed, connections refused) and bring it back with its data.
Tests use it through `running_s3_server`, in a fixture of their own scope.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

HOST = "127.0.0.1"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class S3Server:
    """moto's S3 on a fixed loopback port, with one bucket made for the test."""

    def __init__(self, port: int, bucket: str) -> None:
        self.port = port
        self.bucket = bucket
        self._app = DomainDispatcherApplication(create_backend_app)
        # (method, path) of every request served, in order: what the service asked of it.
        self.requests: list[tuple[str, str]] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def environment(self) -> dict[str, str]:
        """What boto3 needs, set the standard way, to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "compute-test",
            "AWS_SECRET_ACCESS_KEY": "compute-test-secret",
            "AWS_REGION": REGION,
        }

    def blob_url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def start(self) -> None:
        server = make_server(
            HOST, self.port, self._recorded, threaded=True, request_handler=MotoRequestHandler
        )
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def _recorded(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        return self._app(environ, start_response)

    def gets_of(self, key: str) -> int:
        """How many times the object `key` of the bucket was read (GET)."""
        return self.requests.count(("GET", f"/{self.bucket}/{key}"))

    def stop(self) -> None:
        """Close the port: connections are refused until `start()`; objects are kept."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def object_keys(self, prefix: str = "") -> list[str]:
        """Every key in the bucket under `prefix`, as the server itself lists them."""
        client = self.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [found["Key"] for page in pages for found in page.get("Contents", [])]

    def client(self) -> Any:
        import boto3

        environment = self.environment()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        )


@contextlib.contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """An S3 server on a free port with an empty bucket of its own, stopped on exit."""
    server = S3Server(free_port(), f"compute-test-{uuid.uuid4().hex[:10]}")
    server.start()
    try:
        server.client().create_bucket(Bucket=server.bucket)
        yield server
    finally:
        server.stop()
