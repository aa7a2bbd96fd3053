"""The PostgreSQL server figure 6 runs on, and a database of the run's own on it.

The server is the one `COMPUTE_BENCH_POSTGRES_URL` names, by default the local one that
CI and the tests use (trust authentication). The run connects to its database only to
create `compute_bench_<random>` and to drop it again, however the figure ends.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

ADMIN_URL_VARIABLE = "COMPUTE_BENCH_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_SECONDS = 5
DATABASE_PREFIX = "compute_bench_"


class Unreachable(RuntimeError):
    """No PostgreSQL server answers at the admin URL."""


def admin_url() -> str:
    """The URL of a database on the server, whose user may create databases."""
    return os.environ.get(ADMIN_URL_VARIABLE) or DEFAULT_ADMIN_URL


def server_name(url: str) -> str:
    """`host:port` of `url`, for messages: never its password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


def connect(url: str, autocommit: bool = True) -> psycopg.Connection[TupleRow]:
    """A connection to `url`; Unreachable when no server answers there.

    Raises:
        Unreachable: The server refused the connection or did not answer in time.
    """
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except psycopg.OperationalError as error:
        raise Unreachable(f"PostgreSQL not reachable at {server_name(url)}: {error}") from error


@contextmanager
def fresh_database(admin: str) -> Iterator[str]:
    """Create an empty database on `admin`'s server; yield its URL; drop it on the way out.

    Raises:
        Unreachable: No server answers at `admin`.
    """
    name = DATABASE_PREFIX + secrets.token_hex(6)
    with connect(admin) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(admin, name)
    finally:
        # A connection of its own: the first may have been closed by the server meanwhile.
        # FORCE ends the sessions the API's pool may still hold.
        with connect(admin) as connection:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            connection.execute(drop.format(sql.Identifier(name)))


def database_url(admin: str, name: str) -> str:
    """`admin` naming the database `name` instead of its own."""
    parts = urlsplit(admin)
    return urlunsplit(parts._replace(path=f"/{name}"))
