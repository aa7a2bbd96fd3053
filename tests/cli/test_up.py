"""`compute up`: serving, issuing tokens against it, and stopping without leftovers."""

from __future__ import annotations

import base64
import json
import signal
import time
from collections.abc import Callable

import psutil
import pytest
import redis

from tests.redis_databases import claimed_redis_url

from .conftest import (
    STOP_TIMEOUT_SECONDS,
    RunningUp,
    create_token,
    get,
    survivors,
)


def jwt_claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_up_serves_the_api_and_says_how_to_reach_it(service: RunningUp) -> None:
    assert get(f"{service.root_url}/healthz").status_code == 200
    log = service.log()
    assert f"Compute is running at {service.base_url}" in log
    assert f"export DESCARTESLABS_COMPUTE_URL={service.base_url}" in log
    assert f"export DESCARTESLABS_IAM_URL={service.root_url}/iam" in log
    assert "export DESCARTESLABS_TOKEN=$(compute token create --user NAME" in log


def test_up_runs_an_embedded_broker_on_loopback(service: RunningUp) -> None:
    broker = service.child("redis-server")

    listening = [c for c in broker.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
    assert listening
    assert {connection.laddr.ip for connection in listening} == {"127.0.0.1"}
    assert (service.data_dir / "redis").is_dir()


def test_token_create_prints_a_jwt_the_api_accepts(service: RunningUp) -> None:
    token = create_token(service, "alice")

    claims = jwt_claims(token)
    assert claims["name"] == "alice"
    assert claims["sub"]
    assert claims["exp"] > time.time() + 3600
    assert get(f"{service.base_url}/functions", token).status_code == 200
    assert get(f"{service.base_url}/functions").status_code == 401


def test_token_create_names_one_user_per_name(service: RunningUp) -> None:
    first, again, other = (create_token(service, name) for name in ("bob", "bob", "carol"))

    assert jwt_claims(first)["sub"] == jwt_claims(again)["sub"]
    assert jwt_claims(first)["sub"] != jwt_claims(other)["sub"]


def test_sigterm_stops_every_process_cleanly(start_up: Callable[..., RunningUp]) -> None:
    running = start_up()
    tree = running.tree()
    assert len(tree) >= 4, tree  # broker, worker and its pool, gunicorn and its workers

    started = time.monotonic()
    assert running.terminate() == 0

    assert time.monotonic() - started < STOP_TIMEOUT_SECONDS
    assert survivors(tree) == []
    assert "Stopped." in running.log()


def test_a_dying_child_stops_everything_with_an_error(start_up: Callable[..., RunningUp]) -> None:
    running = start_up()
    tree = running.tree()

    running.child("worker.celery_app").send_signal(signal.SIGKILL)

    assert running.process.wait(timeout=STOP_TIMEOUT_SECONDS) == 1
    assert "the worker process was killed by SIGKILL unexpectedly" in running.log()
    assert survivors(tree) == []


@pytest.fixture
def external_redis() -> str:
    with claimed_redis_url() as url:
        yield url


def test_up_uses_the_redis_url_broker(
    start_up: Callable[..., RunningUp], external_redis: str
) -> None:
    running = start_up(REDIS_URL=external_redis)

    names = {process.name() for process in running.tree()}
    assert "redis-server" not in names
    # The worker declared its queue binding in that Redis.
    client = redis.Redis.from_url(external_redis)
    assert list(client.scan_iter("_kombu.binding.*"))
    client.close()
    assert "Embedded broker" not in running.log()
