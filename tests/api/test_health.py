"""`/healthz` and `/readyz` over HTTP: 200 while the database and the broker answer, 503
naming the one that does not."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import POSTGRES_ADMIN_URL, ApiServer, running_api
from tests.redis_databases import claimed_redis_url


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(server: ApiServer, path: str) -> requests.Response:
    started = time.monotonic()
    response = requests.get(server.root_url + path, timeout=30)
    # Probes poll it: it must answer at once, even about a part that is down.
    assert time.monotonic() - started < 3
    return response


@pytest.fixture
def with_broker(tmp_path: Path) -> Iterator[ApiServer]:
    with (
        claimed_redis_url() as redis_url,
        running_api("sqlite", tmp_path, {"REDIS_URL": redis_url}) as server,
    ):
        yield server


def test_healthy_with_database_and_broker(with_broker: ApiServer) -> None:
    response = get(with_broker, "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok", "down": []}


def test_an_api_without_a_broker_is_healthy(api_server: ApiServer) -> None:
    response = get(api_server, "/healthz")
    assert response.status_code == 200
    assert response.json()["broker"] == "not configured"


def test_an_unreachable_broker_is_named(tmp_path: Path) -> None:
    port = closed_port()
    broker = f"redis://127.0.0.1:{port}/0"
    with running_api("sqlite", tmp_path, {"REDIS_URL": broker}) as server:
        response = get(server, "/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"]
    assert body["broker"] == "unreachable" and body["database"] == "ok"
    assert str(port) not in response.text  # no address for anyone who asks


def test_an_unreachable_database_is_named(tmp_path: Path) -> None:
    with (
        claimed_redis_url() as redis_url,
        running_api("postgresql", tmp_path, {"REDIS_URL": redis_url}) as server,
    ):
        database = sa.make_url(server.app.config["SQLALCHEMY_DATABASE_URI"]).database
        admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            # The database refuses every new connection, and its open ones are ended.
            connection.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"
                ),
                {"d": database},
            )
        try:
            response = get(server, "/healthz")
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
            admin.dispose()
        assert response.status_code == 503
        assert response.json()["down"] == ["database"]
        assert response.json()["broker"] == "ok"
        # And healthy again once it answers.
        assert get(server, "/healthz").status_code == 200


def test_not_ready_while_no_worker_is_alive(with_broker: ApiServer) -> None:
    response = get(with_broker, "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["workers"]
    assert body["live_workers"] == 0 and body["limits"] == {}
