"""Figure 3's baseline: the same job rows inserted by hand into the same kind of database,
and as many small messages pushed to the same Redis in one pipeline.

The baseline database is a SQLite file beside the service's, made with the service's own
schema (its `users`, `functions` and `jobs` tables and their indexes, read from its
database) and the same connection settings, so each row costs the same index and foreign
key upkeep. What the service does beyond this (HTTP, validation, JSON both ways, the
submission key) is what figure 3's ratio shows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import redis

# The columns compute/server/transitions/bulk.py writes, in its order.
INSERT = (
    "INSERT INTO jobs (id, function_id, owner_id, creation_date, enqueued_at, args, kwargs, "
    "status, attempt, lost_count, has_result) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0, 0)"
)
TABLES = ("users", "functions", "jobs")
# As compute/server/database.py sets up every SQLite connection of the service (restated:
# the SDK side imports no part of the service; tests/bench checks that they agree).
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
)


@dataclass(frozen=True)
class Seconds:
    """How long the hand-written submit took, in its two parts."""

    insert: float
    publish: float

    @property
    def total(self) -> float:
        return self.insert + self.publish


def connect(database: Path) -> sqlite3.Connection:
    """A connection set up as the service's are."""
    # uri: the service's database is attached read-only by its `file:` URI.
    connection = sqlite3.connect(database, uri=True)
    for pragma in PRAGMAS:
        connection.execute(pragma)
    return connection


def baseline_database(service_database: Path, target: Path, function_id: str) -> None:
    """Create `target` with the service's schema and the rows of the function and its owner."""
    target.unlink(missing_ok=True)
    with contextlib.closing(connect(target)) as connection:
        placeholders = ", ".join("?" * len(TABLES))
        connection.execute("ATTACH DATABASE ? AS service", (f"file:{service_database}?mode=ro",))
        # Tables first (a foreign key may name one made later), then their indexes.
        schema = connection.execute(
            "SELECT sql FROM service.sqlite_master WHERE tbl_name IN "
            f"({placeholders}) AND sql IS NOT NULL ORDER BY type DESC",
            TABLES,
        ).fetchall()
        for (statement,) in schema:
            connection.execute(statement)
        with connection:
            connection.execute(
                "INSERT INTO main.users SELECT * FROM service.users WHERE id = "
                "(SELECT owner_id FROM service.functions WHERE id = ?)",
                (function_id,),
            )
            connection.execute(
                "INSERT INTO main.functions SELECT * FROM service.functions WHERE id = ?",
                (function_id,),
            )
        connection.execute("DETACH DATABASE service")


def time_ordered_ids(count: int) -> list[str]:
    """Ids laid out as the service's (milliseconds, sequence, noise), so they reach the
    primary key's B-tree in the same order."""
    milliseconds = int(time.time() * 1000)
    noise = os.urandom(6 * count)
    return [
        f"{milliseconds:012x}{index:08x}{noise[index * 6 : index * 6 + 6].hex()}"
        for index in range(count)
    ]


def submit(database: Path, client: redis.Redis, function_id: str, count: int) -> Seconds:
    """Insert `count` pending jobs of `function_id` in one transaction, then publish one
    small message per job in one pipeline; the time of each part."""
    queue = f"compute.bench.hand-written.{function_id}"
    with contextlib.closing(connect(database)) as connection:
        owner = connection.execute(
            "SELECT owner_id FROM functions WHERE id = ?", (function_id,)
        ).fetchone()[0]
        started = time.perf_counter()
        ids = time_ordered_ids(count)
        # Stored as the service stores datetimes: naive UTC.
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(" ")
        rows = [
            (job_id, function_id, owner, now, now, json.dumps([value]), None)
            for value, job_id in enumerate(ids)
        ]
        with connection:
            connection.executemany(INSERT, rows)
        inserted = time.perf_counter()
    pipeline = client.pipeline(transaction=False)
    for job_id in ids:
        pipeline.lpush(queue, json.dumps({"job_id": job_id}))
    pipeline.execute()
    published = time.perf_counter()
    client.delete(queue)
    return Seconds(insert=inserted - started, publish=published - inserted)
