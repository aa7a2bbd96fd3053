"""Jobs ended per minute over the last hour, for the dashboard's chart.

One grouped query: the jobs whose `end_date` falls in the hour, counted per minute and
per status in the database, so at most 60 × 6 rows come back however many jobs ended.
The minute is formatted in SQL by each dialect's own function; both spell it the same.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from compute.server.extensions import db
from compute.server.models import Job, utcnow
from compute.statuses import JobStatus

WINDOW_MINUTES = 60
MINUTE_FORMAT = "%Y-%m-%d %H:%M"
FINAL_STATUSES = sorted(status.value for status in JobStatus.final())


@dataclass(frozen=True)
class Minute:
    start: dt.datetime
    succeeded: int
    failed: int  # failure, timeout or canceled

    @property
    def total(self) -> int:
        return self.succeeded + self.failed


def minute_ended() -> sa.ColumnElement[str]:
    """A job's `end_date` to the minute as `YYYY-MM-DD HH:MM` text (stored naive UTC)."""
    if db.engine.dialect.name == "postgresql":
        return sa.func.to_char(Job.end_date, "YYYY-MM-DD HH24:MI")
    return sa.func.strftime(MINUTE_FORMAT, Job.end_date)


def jobs_per_minute(scope: sa.ColumnElement[bool], now: dt.datetime | None = None) -> list[Minute]:
    """The last `WINDOW_MINUTES` minutes, oldest first, with the jobs of `scope` that
    ended in each (the current minute, so far, last)."""
    now = now or utcnow()
    first = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=WINDOW_MINUTES - 1)
    minute = minute_ended()
    rows = db.session.execute(
        sa.select(minute, Job.status, sa.func.count())
        .where(scope, Job.status.in_(FINAL_STATUSES), Job.end_date >= first)
        .group_by(minute, Job.status)
    )
    succeeded: dict[str, int] = {}
    failed: dict[str, int] = {}
    for label, status, count in rows:
        tally = succeeded if status == JobStatus.SUCCESS else failed
        tally[label] = tally.get(label, 0) + count
    minutes = []
    for index in range(WINDOW_MINUTES):
        start = first + dt.timedelta(minutes=index)
        label = start.strftime(MINUTE_FORMAT)
        minutes.append(Minute(start, succeeded.get(label, 0), failed.get(label, 0)))
    return minutes
