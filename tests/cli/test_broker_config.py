"""The embedded broker's settings and password, and a broker started with them."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from compute.cli.broker import EmbeddedBroker, start_embedded_redis
from compute.cli.broker_config import (
    MAXMEMORY_VARIABLE,
    PASSWORD_FILE_NAME,
    BrokerSettings,
    broker_config,
    load_password,
)
from compute.cli.supervisor import ServiceError, Supervisor

StartBroker = Callable[[Path], EmbeddedBroker]


@pytest.fixture
def start_broker() -> Iterator[StartBroker]:
    """Factory: `start_broker(data_dir)` runs the embedded broker alone, stopped afterwards."""
    supervisors: list[Supervisor] = []

    def start(data_dir: Path) -> EmbeddedBroker:
        data_dir.mkdir(mode=0o711, exist_ok=True)
        supervisor = Supervisor()
        supervisors.append(supervisor)
        return start_embedded_redis(supervisor, data_dir)

    yield start
    for supervisor in supervisors:
        stop(supervisor)


def stop(supervisor: Supervisor) -> None:
    # Not stop_all: that would also kill whatever else this test process has started.
    for child in supervisor.children:
        child.process.terminate()
        child.process.wait(timeout=10)


def test_the_password_is_made_once_private_and_reused(tmp_path: Path) -> None:
    first = load_password(tmp_path)

    assert load_password(tmp_path) == first
    path = tmp_path / PASSWORD_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [PASSWORD_FILE_NAME]


def test_a_loosened_password_file_is_made_private_again(tmp_path: Path) -> None:
    load_password(tmp_path)
    (tmp_path / PASSWORD_FILE_NAME).chmod(0o644)

    load_password(tmp_path)

    assert stat.S_IMODE((tmp_path / PASSWORD_FILE_NAME).stat().st_mode) == 0o600


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAXMEMORY_VARIABLE, raising=False)
    assert BrokerSettings.from_environment().maxmemory_mb == 1024

    monkeypatch.setenv(MAXMEMORY_VARIABLE, "256")
    assert BrokerSettings.from_environment().maxmemory_mb == 256


@pytest.mark.parametrize("value", ["0", "-5", "1gb", "lots"])
def test_a_bad_memory_limit_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(MAXMEMORY_VARIABLE, value)

    with pytest.raises(ServiceError, match=MAXMEMORY_VARIABLE):
        BrokerSettings.from_environment()


def test_the_configuration_locks_the_server() -> None:
    lines = broker_config(6400, "sekrit", BrokerSettings(maxmemory_mb=64)).splitlines()

    for line in (
        "bind 127.0.0.1",
        "protected-mode yes",
        "requirepass sekrit",
        "maxmemory 64mb",
        "maxmemory-policy noeviction",
        'save ""',
        "appendonly no",
        'rename-command CONFIG ""',
        'rename-command SHUTDOWN ""',
    ):
        assert line in lines


def test_a_started_broker_has_the_configured_memory_limit(
    start_broker: StartBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(MAXMEMORY_VARIABLE, "64")

    broker = start_broker(tmp_path / "data")

    client = redis.Redis.from_url(broker.url)
    memory = client.info("memory")
    client.close()
    assert memory["maxmemory"] == 64 * 1024 * 1024
    assert memory["maxmemory_policy"] == "noeviction"
    assert broker.password not in broker.public_url


def test_a_restarted_broker_keeps_its_password(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o711)
    first_run, second_run = Supervisor(), Supervisor()
    try:
        first = start_embedded_redis(first_run, data_dir)
        stop(first_run)
        second = start_embedded_redis(second_run, data_dir)

        assert second.password == first.password
        client = redis.Redis.from_url(second.url)
        assert client.ping()
        client.close()
    finally:
        stop(first_run)
        stop(second_run)
