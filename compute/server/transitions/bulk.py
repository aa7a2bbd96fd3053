"""Set-based writes of job rows: a 10,000-job map is one INSERT, a rerun one UPDATE per status.

The rows travel as one JSON parameter that the database itself unpacks
(`json_to_recordset` on PostgreSQL, `json_each` on SQLite), so the cost per job is a few
microseconds of JSON encoding rather than a statement round trip.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from compute.statuses import JobStatus

from ..extensions import DbSession
from ..ids import new_ids
from ..models import Function, Job, Submission, UTCDateTime, utcnow
from .counts import record_job_changes

INSERT_COLUMNS = (
    "id, function_id, owner_id, creation_date, enqueued_at, args, kwargs, status, attempt, "
    "lost_count, has_result"
)

POSTGRES_INSERT = f"""
INSERT INTO jobs ({INSERT_COLUMNS})
SELECT r.id, :function_id, :owner_id, :creation_date, :creation_date, r.args, r.kwargs,
       :status, 0, 0, false
FROM json_to_recordset(CAST(:rows AS json)) AS r(id varchar, args json, kwargs json)
"""

SQLITE_INSERT = f"""
INSERT INTO jobs ({INSERT_COLUMNS})
SELECT json_extract(value, '$.id'), :function_id, :owner_id, :creation_date, :creation_date,
       json_extract(value, '$.args'), json_extract(value, '$.kwargs'), :status, 0, 0, 0
FROM json_each(:rows)
"""


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job just inserted, as its row reads, for the answer to its submission.

    Plain values rather than models: building 100,000 ORM objects only to read them back
    out cost more than the insert itself.
    """

    id: str
    function_id: str
    owner_id: str
    creation_date: dt.datetime
    args: Any
    kwargs: Any
    status: str = JobStatus.PENDING.value
    attempt: int = 0
    runtime: float | None = None
    error: str | None = None
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None


def insert_jobs(
    session: DbSession, function: Function, calls: list[tuple[Any, Any]]
) -> list[NewJob]:
    """Insert one pending job per (args, kwargs) in order; return them as they read.

    All share one creation_date; their ids increase, which keeps input order.
    """
    if not calls:
        return []
    ids = new_ids(len(calls))
    created = utcnow()
    rows = json.dumps(
        [
            {"id": job_id, "args": args, "kwargs": kwargs}
            for job_id, (args, kwargs) in zip(ids, calls)
        ],
        separators=(",", ":"),
    )
    dialect = session.get_bind().dialect.name
    statement = sa.text(POSTGRES_INSERT if dialect == "postgresql" else SQLITE_INSERT).bindparams(
        sa.bindparam("creation_date", type_=UTCDateTime())
    )
    session.execute(
        statement,
        {
            "rows": rows,
            "function_id": function.id,
            "owner_id": function.owner_id,
            "creation_date": created,
            "status": JobStatus.PENDING.value,
        },
    )
    record_job_changes(session, function.id, {JobStatus.PENDING: len(calls)})
    return [
        NewJob(job_id, function.id, function.owner_id, created, args, kwargs)
        for job_id, (args, kwargs) in zip(ids, calls)
    ]


def reset_for_rerun(session: DbSession, function_id: str) -> list[str]:
    """Move the function's failed, timed-out and canceled jobs back to pending; return
    their ids."""
    rerun_ids: list[str] = []
    deltas: dict[str, int] = {}
    for status in sorted(JobStatus.unsuccessful()):
        ids = list(
            session.scalars(
                sa.update(Job)
                .where(Job.function_id == function_id, Job.status == status.value)
                .values(
                    status=JobStatus.PENDING.value,
                    runtime=None,
                    error=None,
                    start_date=None,
                    end_date=None,
                    has_result=False,
                    # A rerun starts fresh retry and lost-worker budgets.
                    attempt=0,
                    lost_count=0,
                    cancel_requested_at=None,
                    enqueued_at=utcnow(),
                )
                .returning(Job.id)
                .execution_options(synchronize_session=False)
            )
        )
        if ids:
            deltas[status] = -len(ids)
            rerun_ids.extend(ids)
    if rerun_ids:
        deltas[JobStatus.PENDING] = len(rerun_ids)
        record_job_changes(session, function_id, deltas)
    return rerun_ids


def delete_job(session: DbSession, job: Job) -> bool:
    """Delete a job and count it out under the status it had; False if already gone.

    The status comes from the DELETE itself: on SQLite the row read before is not locked,
    so a worker or a concurrent delete may have changed or removed it since. The
    function's row is locked first, as every writer of both takes them (a worker's claim
    and finish, a function's deletion): one order everywhere cannot deadlock.
    """
    session.execute(sa.select(Function.id).where(Function.id == job.function_id).with_for_update())
    status = session.scalar(
        sa.delete(Job)
        .where(Job.id == job.id)
        .returning(Job.status)
        .execution_options(synchronize_session=False)
    )
    if status is None:
        return False
    record_job_changes(session, job.function_id, {status: -1})
    return True


def fail_pending_jobs(session: DbSession, function_id: str, reason: str) -> int:
    """End every pending job of a function as `failure` with `reason`; return how many."""
    ids = list(
        session.scalars(
            sa.update(Job)
            .where(Job.function_id == function_id, Job.status == JobStatus.PENDING.value)
            .values(status=JobStatus.FAILURE.value, error=reason, end_date=utcnow())
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
    )
    if ids:
        record_job_changes(
            session, function_id, {JobStatus.PENDING: -len(ids), JobStatus.FAILURE: len(ids)}
        )
    return len(ids)


def delete_function(session: DbSession, function: Function) -> None:
    """Delete a function with its jobs and its submission keys.

    The jobs go explicitly: the foreign keys cascade too, but on SQLite only while its
    foreign_keys pragma is on. No counter is kept for a function that is gone.
    """
    session.execute(sa.delete(Submission).where(Submission.function_id == function.id))
    session.execute(sa.delete(Job).where(Job.function_id == function.id))
    session.delete(function)
