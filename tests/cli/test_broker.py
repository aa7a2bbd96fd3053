"""The embedded broker of `compute up` is locked against a job that can reach its port."""

from __future__ import annotations

import os
import pwd
import re
import socket
import stat

import psutil
import pytest
import redis

import compute
from compute import Function, JobStatus
from compute.cli.broker_config import PASSWORD_FILE_NAME, RENAMED_COMMANDS
from tests.capabilities import ROOT, requires

from .conftest import RunningUp, create_token

BROKER_LINE = re.compile(r"Embedded broker at redis://127\.0\.0\.1:(\d+)/0")
# What a hostile job would try first: each hands it the server, not just the queues.
DANGEROUS_COMMANDS = [
    ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "dir", "/root/.ssh"),
    ("SHUTDOWN", "NOSAVE"),
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("DEBUG", "SLEEP", "0"),
    ("MODULE", "LIST"),
    ("SAVE",),
    ("BGSAVE",),
    ("REPLICAOF", "127.0.0.1", "1"),
    ("SLAVEOF", "127.0.0.1", "1"),
    ("ACL", "LIST"),
    ("CLIENT", "LIST"),
    ("MONITOR",),
]


def broker_port(service: RunningUp) -> int:
    found = BROKER_LINE.search(service.log())
    assert found, service.log()
    return int(found.group(1))


def broker_password(service: RunningUp) -> str:
    return (service.data_dir / PASSWORD_FILE_NAME).read_text().strip()


def raw_reply(port: int, command: bytes) -> bytes:
    """What Redis answers a client that sends `command` and nothing else (no AUTH)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(command)
        return connection.recv(4096)


@pytest.fixture
def client(service: RunningUp) -> redis.Redis:
    connection = redis.Redis(
        port=broker_port(service), password=broker_password(service), socket_timeout=5
    )
    yield connection
    connection.close()


@pytest.mark.parametrize(
    "command", [b"PING\r\n", b"LPUSH celery forged\r\n", b"LRANGE celery 0 -1\r\n"]
)
def test_a_client_without_the_password_is_refused(service: RunningUp, command: bytes) -> None:
    assert raw_reply(broker_port(service), command).startswith(b"-NOAUTH")


@pytest.mark.parametrize("command", DANGEROUS_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_dangerous_commands_are_unknown_even_with_the_password(
    client: redis.Redis, command: tuple[str, ...]
) -> None:
    with pytest.raises(redis.ResponseError, match="unknown command"):
        client.execute_command(*command)

    assert client.ping()


def test_every_renamed_command_is_one_the_transport_does_not_need() -> None:
    # Kombu's Redis transport runs Lua scripts and transactions, and blocks on lists.
    needed = {"EVAL", "EVALSHA", "SCRIPT", "MULTI", "EXEC", "BRPOP", "LPUSH", "ZADD", "PUBLISH"}
    assert not needed & set(RENAMED_COMMANDS)


def test_memory_is_capped_and_nothing_is_evicted(client: redis.Redis) -> None:
    memory = client.info("memory")

    assert memory["maxmemory"] == 1024 * 1024 * 1024
    assert memory["maxmemory_policy"] == "noeviction"


def test_the_password_file_is_private(service: RunningUp) -> None:
    info = (service.data_dir / PASSWORD_FILE_NAME).stat()

    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.geteuid()
    assert len(broker_password(service)) >= 32


def test_the_password_is_in_no_command_line_and_never_printed(service: RunningUp) -> None:
    password = broker_password(service)

    for process in psutil.process_iter(["cmdline"]):
        assert password not in " ".join(process.info["cmdline"] or []), process
    assert password not in service.log()
    assert f"Embedded broker at redis://127.0.0.1:{broker_port(service)}/0" in service.log()


def test_the_services_processes_get_the_password_in_their_environment(
    service: RunningUp,
) -> None:
    password = broker_password(service)

    for marker in ("worker.celery_app", "gunicorn"):
        assert password in service.child(marker).environ()["REDIS_URL"]
    assert service.child("redis-server").environ() == {}


@requires(ROOT, "root (only root switches the broker's user)")
def test_a_root_compute_up_runs_the_broker_unprivileged(service: RunningUp) -> None:
    nobody = pwd.getpwnam("nobody")
    broker = service.child("redis-server")

    assert set(broker.uids()) == {nobody.pw_uid}
    assert set(broker.gids()) == {nobody.pw_gid}
    assert supplementary_groups(broker.pid) == []
    directory = (service.data_dir / "redis").stat()
    assert (directory.st_uid, stat.S_IMODE(directory.st_mode)) == (nobody.pw_uid, 0o700)


def supplementary_groups(pid: int) -> list[str]:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Groups:"):
                return line.split()[1:]
    raise AssertionError("no Groups line")


def triple(x: int) -> int:
    return x * 3


def test_a_job_runs_end_to_end_through_the_locked_broker(service: RunningUp) -> None:
    token = create_token(service, "broker-check")
    compute.configure(url=service.base_url, token=token)
    try:
        fn = Function(triple, name="triple", timeout=60)
        fn.save()
        job = fn(14)
        job.wait_for_completion(timeout=240, interval=1)

        assert job.status == JobStatus.SUCCESS
        assert job.result() == 42
    finally:
        compute.configure()
