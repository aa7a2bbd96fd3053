from __future__ import annotations

import socket

import pytest
import requests

from compute import (
    BadRequestError,
    ComputeClient,
    ConflictError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
)
from compute._exceptions import ClientError, error_for_status


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequestError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, ValidationError),
        (429, RateLimitError),
        (418, ClientError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_statuses_map_to_exceptions(status, kind):
    error = error_for_status(status, {"detail": "nope", "errors": {"memory": ["too big"]}})
    assert type(error) is kind
    assert error.status == status
    assert error.detail == "nope"
    assert error.errors == {"memory": ["too big"]}
    assert "memory: too big" in str(error)


def test_non_json_error_bodies_fall_back_to_the_reason():
    error = error_for_status(502, None, "Bad Gateway")
    assert isinstance(error, ServerError)
    assert error.detail == "Bad Gateway" and error.errors == {}
    assert error_for_status(422, {"errors": {"x": "single"}}).errors == {"x": ["single"]}


def test_connection_failures_are_translated():
    client = ComputeClient(f"http://127.0.0.1:{closed_port()}/compute/v1", "t", timeout=2)
    with pytest.raises(ServiceUnavailableError) as info:
        client.request("GET", "/functions")
    assert not isinstance(info.value, requests.RequestException)
    assert isinstance(info.value.__cause__, requests.RequestException)


def test_an_injected_session_is_used_as_is():
    session = requests.Session()
    client = ComputeClient("http://example.invalid/compute/v1/", "t", session=session)
    assert client.session is session
    assert client.url == "http://example.invalid/compute/v1"
