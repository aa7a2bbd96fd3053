"""What the embedded redis-server is told: its settings, its password and its configuration.

Jobs run on the same machine and can connect to loopback, so the broker is locked even
against a client that reaches its port: it wants a password, holds a bounded amount of
memory, and lacks the commands that would hand a client the server itself. The
configuration, password included, reaches redis-server on its stdin (`redis-server -`):
never in argv, which every local user can read in `/proc/<pid>/cmdline`, nor in a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .broker_user import NOBODY
from .supervisor import ServiceError

MAXMEMORY_VARIABLE = "COMPUTE_BROKER_MAXMEMORY_MB"
USER_VARIABLE = "COMPUTE_BROKER_USER"
DEFAULT_MAXMEMORY_MB = 1024
# Beside `secret.key`, in the data directory only the service's own user may write, not in
# the broker's directory: the broker's user owns that one, and root must never read a file
# (it could be a symlink to any other) that another user may replace.
PASSWORD_FILE_NAME = "redis.password"
PASSWORD_BYTES = 32
LOOPBACK = "127.0.0.1"

# Commands no part of the service sends, each of which gives a client more than the
# queues: the server's files and settings (CONFIG, SAVE, BGSAVE, BGREWRITEAOF, DEBUG,
# MODULE), its life (SHUTDOWN), every key at once (FLUSHALL, FLUSHDB, SWAPDB), other
# clients and their traffic (CLIENT, MONITOR), users (ACL), crafted serialized values
# (RESTORE, RESTORE-ASKING, PFDEBUG, PFSELFTEST) and replication, which copies the data
# set out or replaces it (REPLICAOF, SLAVEOF, SYNC, PSYNC, REPLCONF, FAILOVER, MIGRATE,
# CLUSTER). Kombu's transport still has what it uses: lists (LPUSH, BRPOP, RPOP, LLEN),
# sets, sorted sets, hashes, MULTI/EXEC, PUBLISH/PSUBSCRIBE and Lua scripts (EVALSHA,
# SCRIPT LOAD) for its bindings and its restore lock. redis-py's `CLIENT SETINFO` on
# connect tolerates an error; kombu's `client_name` option would need CLIENT back.
RENAMED_COMMANDS = (
    "ACL",
    "BGREWRITEAOF",
    "BGSAVE",
    "CLIENT",
    "CLUSTER",
    "CONFIG",
    "DEBUG",
    "FAILOVER",
    "FLUSHALL",
    "FLUSHDB",
    "MIGRATE",
    "MODULE",
    "MONITOR",
    "PFDEBUG",
    "PFSELFTEST",
    "PSYNC",
    "REPLCONF",
    "REPLICAOF",
    "RESTORE",
    "RESTORE-ASKING",
    "SAVE",
    "SHUTDOWN",
    "SLAVEOF",
    "SWAPDB",
    "SYNC",
)


@dataclass(frozen=True)
class BrokerSettings:
    """How the embedded broker runs.

    Attributes:
        maxmemory_mb: the most memory Redis holds data in; past it writes fail, since
            `noeviction` never drops a queued message to make room.
        user: who the broker runs as when `compute up` is root (a name or uid).
    """

    maxmemory_mb: int = DEFAULT_MAXMEMORY_MB
    user: str = NOBODY

    @classmethod
    def from_environment(cls) -> BrokerSettings:
        """The settings of `COMPUTE_BROKER_MAXMEMORY_MB` and `COMPUTE_BROKER_USER`.

        Raises:
            ServiceError: the memory limit is not a positive whole number of MiB.
        """
        text = os.environ.get(MAXMEMORY_VARIABLE) or str(DEFAULT_MAXMEMORY_MB)
        try:
            maxmemory_mb = int(text)
        except ValueError:
            maxmemory_mb = 0
        if maxmemory_mb <= 0:
            raise ServiceError(
                f"{MAXMEMORY_VARIABLE} must be a positive number of MiB, not {text!r}"
            )
        return cls(maxmemory_mb, os.environ.get(USER_VARIABLE) or NOBODY)


def load_password(data_dir: Path) -> str:
    """The broker's password: read from the data directory, created there (0600) on first start.

    Raises:
        ServiceError: the password file is empty.
    """
    path = data_dir / PASSWORD_FILE_NAME
    if not path.exists():
        _create_private(path, secrets.token_urlsafe(PASSWORD_BYTES))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    password = path.read_text().strip()
    if not password:
        raise ServiceError(f"{path} is empty: delete it to have a new password made")
    return password


def _create_private(path: Path, content: str) -> None:
    # Written whole under a temporary name, then linked into place: a start that
    # crashes midway leaves no empty password, and of two starts racing, one wins.
    staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        with contextlib.suppress(FileExistsError):  # the other start's password stands
            os.link(staging, path)
    finally:
        staging.unlink()


def broker_config(port: int, password: str, settings: BrokerSettings) -> str:
    """redis-server's configuration file: loopback only, password, no persistence, capped.

    No `dir`: redis-server works in the directory it is started in, which its parent
    enters before giving up root, so no directory above it need be open to the broker's
    user.
    """
    lines = [
        f"port {port}",
        f"bind {LOOPBACK}",
        "protected-mode yes",
        f"requirepass {password}",
        'save ""',
        "appendonly no",
        f"maxmemory {settings.maxmemory_mb}mb",
        "maxmemory-policy noeviction",
        "loglevel warning",
        # Its title would have to fit in the space of argv ("redis-server -"), cut short.
        "set-proc-title no",
        *(f'rename-command {command} ""' for command in RENAMED_COMMANDS),
    ]
    return "\n".join(lines) + "\n"
