"""Figure 6's baseline: the statements the API runs for one page of `Job.search` filtered
by status, sent straight to the same database with psycopg.

Restated as SQLAlchemy logs them from api/query/listing.py's `run_list_query` on
PostgreSQL, bind casts and all (the SDK side imports no part of the service). A first page
sums the status's counter over the caller's functions for its total (api/query/totals.py),
then reads one row more than the page; a later page only reads, after the last row's
(creation_date, id) that the cursor carries, which also carries the total. Each request
also looks up the token's user: that is the API's part of the ratio, not the query's.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import TupleRow

COLUMNS = (
    "jobs.id, jobs.function_id, jobs.owner_id, jobs.creation_date, jobs.args, jobs.kwargs, "
    "jobs.status, jobs.runtime, jobs.attempt, jobs.error, jobs.start_date, jobs.end_date, "
    "jobs.has_result, jobs.lease_owner, jobs.lease_expires_at, jobs.lost_count, "
    "jobs.enqueued_at"
)
SCOPE = "jobs.owner_id = %(owner_id)s::VARCHAR AND jobs.status = %(status)s::VARCHAR"
AFTER = (
    "(jobs.creation_date, jobs.id) > "
    "(%(after_date)s::TIMESTAMP WITHOUT TIME ZONE, %(after_id)s::VARCHAR)"
)
ORDER = "ORDER BY jobs.creation_date ASC, jobs.id ASC LIMIT %(limit)s::INTEGER"
COUNT = f"SELECT count(*) AS count_1 FROM jobs WHERE {SCOPE}"
# The status names the counter column: one of a fixed few, checked before it is used.
STATUS_COUNTERS = frozenset({"pending", "running", "success", "failure", "timeout"})
TOTAL = (
    "SELECT sum(functions.{status}_count) AS sum_1 FROM functions "
    "WHERE functions.owner_id = %(owner_id)s::VARCHAR"
)
FIRST_PAGE = f"SELECT {COLUMNS} FROM jobs WHERE {SCOPE} {ORDER}"
LATER_PAGE = f"SELECT {COLUMNS} FROM jobs WHERE {SCOPE} AND {AFTER} {ORDER}"
EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS) "


@dataclass(frozen=True)
class Position:
    """Where a page ends: its last job's creation date (UTC) and id."""

    creation_date: dt.datetime
    id: str


@dataclass(frozen=True)
class PageQuery:
    """The statements of one page: after `after`, or the first page when None."""

    owner_id: str
    status: str
    page_size: int
    after: Position | None = None

    def statements(self) -> dict[str, str]:
        """Each statement the API runs for this page, by name."""
        if self.after is None:
            if self.status not in STATUS_COUNTERS:
                raise ValueError(f"no job status {self.status!r}")
            return {"total": TOTAL.format(status=self.status), "page": FIRST_PAGE}
        return {"page": LATER_PAGE}

    def parameters(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "owner_id": self.owner_id,
            "status": self.status,
            "limit": self.page_size + 1,  # one more: whether a next page exists
        }
        if self.after is not None:
            # Stored as naive UTC, as the service binds it.
            when = self.after.creation_date.astimezone(dt.timezone.utc).replace(tzinfo=None)
            values.update(after_date=when, after_id=self.after.id)
        return values


def milliseconds(connection: psycopg.Connection[TupleRow], query: PageQuery) -> dict[str, float]:
    """Run the page's statements, fetching every row; how long each took, by name."""
    times = {}
    parameters = query.parameters()
    for name, statement in query.statements().items():
        started = time.perf_counter()
        connection.execute(statement, parameters).fetchall()
        times[name] = (time.perf_counter() - started) * 1000
    return times


def matching(connection: psycopg.Connection[TupleRow], query: PageQuery) -> int:
    """How many jobs the search matches, as the first page counts them."""
    found = connection.execute(COUNT, query.parameters()).fetchone()
    return int(found[0]) if found else 0


def plans(connection: psycopg.Connection[TupleRow], query: PageQuery) -> dict[str, list[str]]:
    """EXPLAIN ANALYZE of each of the page's statements, by name, line by line."""
    parameters = query.parameters()
    return {
        name: [str(row[0]) for row in connection.execute(EXPLAIN + statement, parameters)]
        for name, statement in query.statements().items()
    }
