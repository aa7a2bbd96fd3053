"""A month of one function's jobs, written straight into the jobs table in one statement:
only running jobs gives them their statuses, and running a million through the service
would take hours on a small machine.

The rows read as the service's own do. Jobs come in maps of `MAP_SIZE` that share a
creation date, the maps spread evenly over `SPAN`, the newest ending now; ids are laid
out as the service makes them (milliseconds, sequence, noise), so they reach the B-trees
in the same order. The oldest jobs are finished (of every 20, `FAILURES_PER_20` failed,
`TIMEOUTS_PER_20` timed out, the rest succeeded, spread evenly over the month), the
newest are still running or pending. The function's per-status counts are set from the
rows, as the service keeps them, and the table is vacuumed and analyzed, as autovacuum
would have left a table this old.
"""

from __future__ import annotations

import datetime as dt

from psycopg import sql

from compute.statuses import JobStatus

from .postgres import connect

MAP_SIZE = 1000
SPAN = dt.timedelta(days=30)
FAILURES_PER_20 = 5
TIMEOUTS_PER_20 = 1
PENDING_SHARE = 0.02
RUNNING_SHARE = 0.01
# What a running job's worker holds: a lease, renewed by its heartbeat.
LEASE = dt.timedelta(seconds=15)
STARTED_AFTER = dt.timedelta(seconds=2)

INSERT = """
WITH numbered AS (
    SELECT n,
           %(first_ms)s::bigint + (n / %(map_size)s) * %(map_gap_ms)s::bigint AS created_ms,
           CASE
               WHEN n >= %(pending_from)s THEN %(pending)s::varchar
               WHEN n >= %(running_from)s THEN %(running)s::varchar
               WHEN n %% 20 < %(failures)s THEN %(failure)s::varchar
               WHEN n %% 20 < %(failures)s + %(timeouts)s THEN %(timeout)s::varchar
               ELSE %(success)s::varchar
           END AS status,
           0.5 + (n %% 97) / 10.0 AS seconds
    FROM generate_series(0, %(count)s - 1) AS n
), timed AS (
    SELECT numbered.*,
           to_timestamp(created_ms / 1000.0) AT TIME ZONE 'UTC' AS created,
           CASE
               WHEN numbered.status = %(timeout)s THEN functions.timeout::float
               WHEN numbered.status IN (%(success)s, %(failure)s) THEN numbered.seconds
           END AS runtime,
           functions.id AS function_id,
           functions.owner_id
    FROM numbered CROSS JOIN functions
    WHERE functions.id = %(function_id)s
)
INSERT INTO jobs (id, function_id, owner_id, creation_date, args, kwargs, status, runtime,
                  attempt, error, start_date, end_date, has_result, lease_owner,
                  lease_expires_at, lost_count, enqueued_at)
SELECT lpad(to_hex(created_ms), 12, '0') || lpad(to_hex(n %% %(map_size)s), 8, '0')
           || substr(md5(n::text), 1, 12),
       function_id,
       owner_id,
       created,
       json_build_array(n),
       NULL,
       status,
       runtime,
       CASE WHEN status = %(pending)s THEN 0 ELSE 1 END,
       CASE
           WHEN status = %(failure)s THEN 'Traceback (most recent call last):' || chr(10)
               || '  File "job.py", line 2, in noop' || chr(10) || 'ValueError: ' || n
           WHEN status = %(timeout)s THEN 'Job timed out after ' || runtime || ' s'
       END,
       CASE WHEN status <> %(pending)s THEN created + %(started_after)s END,
       created + %(started_after)s + make_interval(secs => runtime),
       status = %(success)s,
       CASE WHEN status = %(running)s THEN 'bench-host:' || (n %% 4) END,
       CASE WHEN status = %(running)s THEN %(now)s + %(lease)s END,
       0,
       NULL
FROM timed
"""


def fill(database_url: str, function_id: str, count: int) -> None:
    """Write `count` jobs of `function_id`, set its counts from them, vacuum and analyze."""
    now = dt.datetime.now(dt.timezone.utc)
    first = now - SPAN
    maps = max(1, -(-count // MAP_SIZE))
    parameters = {
        "count": count,
        "function_id": function_id,
        "map_size": MAP_SIZE,
        "first_ms": int(first.timestamp() * 1000),
        "map_gap_ms": int(SPAN.total_seconds() * 1000) // max(1, maps - 1),
        "pending_from": count - int(count * PENDING_SHARE),
        "running_from": count - int(count * (PENDING_SHARE + RUNNING_SHARE)),
        "failures": FAILURES_PER_20,
        "timeouts": TIMEOUTS_PER_20,
        "now": naive(now),
        "lease": LEASE,
        "started_after": STARTED_AFTER,
        **{status.value: status.value for status in JobStatus},
    }
    with connect(database_url, autocommit=False) as connection:
        connection.execute(INSERT, parameters)
        connection.execute(count_update(), {"function_id": function_id, "first": naive(first)})
        connection.commit()
        connection.autocommit = True  # VACUUM runs outside any transaction
        connection.execute("VACUUM (ANALYZE) jobs")
        connection.execute("ANALYZE functions")


def naive(moment: dt.datetime) -> dt.datetime:
    """`moment` as the service stores datetimes: naive UTC."""
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def count_update() -> sql.Composed:
    """Set each `<status>_count` of the function from its rows, and its creation date no
    later than its first job's."""
    counts = sql.SQL(", ").join(
        sql.SQL(
            "{} = (SELECT count(*) FROM jobs WHERE function_id = %(function_id)s AND status = {})"
        ).format(sql.Identifier(f"{status.value}_count"), sql.Literal(status.value))
        for status in JobStatus
    )
    return sql.SQL(
        "UPDATE functions SET {}, creation_date = LEAST(creation_date, %(first)s) "
        "WHERE id = %(function_id)s"
    ).format(counts)
