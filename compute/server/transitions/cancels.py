"""Canceling jobs: a pending job ends `canceled` at once; a running one is asked to stop.

A running attempt is not ended here: its worker stops the process and records the job
`canceled` itself (`finish_job`), so the function's concurrency slot stays taken until
the process is really gone. The request is kept on the row (`cancel_requested_at`) so
that an attempt that fails or loses its worker meanwhile is not tried again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from compute.statuses import JobStatus

from ..extensions import DbSession
from ..models import Function, Job, utcnow
from .counts import record_job_changes

# The reason a canceled job shows (and the published client's `failure` says).
CANCELED_REASON = "canceled"
IN_CLAUSE_CHUNK = 1000


@dataclass(frozen=True)
class Canceled:
    """What a cancel did: pending jobs ended, and running jobs asked to stop."""

    canceled: list[str] = field(default_factory=list)
    stopping: list[str] = field(default_factory=list)


def cancel_jobs(
    session: DbSession, function_id: str, job_ids: Sequence[str] | None = None
) -> Canceled:
    """Cancel the function's pending and running jobs (those of `job_ids` only, if given).

    Jobs already final are left as they are. The function's row is locked first, as
    every writer of its jobs does. The caller commits, then signals the `stopping` jobs'
    workers (`worker.stop_requests.ask_to_stop`).
    """
    session.execute(sa.select(Function.id).where(Function.id == function_id).with_for_update())
    if job_ids is None:
        chunks: list[Sequence[str] | None] = [None]
    else:
        chunks = [job_ids[i : i + IN_CLAUSE_CHUNK] for i in range(0, len(job_ids), IN_CLAUSE_CHUNK)]
    now = utcnow()
    outcome = Canceled()
    for chunk in chunks:
        outcome.canceled.extend(
            _moved(
                session,
                function_id,
                chunk,
                JobStatus.PENDING,
                {"status": JobStatus.CANCELED.value, "error": CANCELED_REASON, "end_date": now},
            )
        )
        outcome.stopping.extend(
            _moved(
                session,
                function_id,
                chunk,
                JobStatus.RUNNING,
                # A repeated request keeps the first time asked.
                {"cancel_requested_at": sa.func.coalesce(Job.cancel_requested_at, now)},
            )
        )
    if outcome.canceled:
        record_job_changes(
            session,
            function_id,
            {JobStatus.PENDING: -len(outcome.canceled), JobStatus.CANCELED: len(outcome.canceled)},
        )
    return outcome


def _moved(
    session: DbSession,
    function_id: str,
    job_ids: Sequence[str] | None,
    status: JobStatus,
    values: dict[str, object],
) -> list[str]:
    statement = sa.update(Job).where(Job.function_id == function_id, Job.status == status.value)
    if job_ids is not None:
        statement = statement.where(Job.id.in_(job_ids))
    return list(
        session.scalars(
            statement.values(values).returning(Job.id).execution_options(synchronize_session=False)
        )
    )


def cancel_requested(session: DbSession, job_id: str) -> bool:
    """Whether the job's owner asked its running attempt to stop."""
    asked = session.scalar(sa.select(Job.cancel_requested_at).where(Job.id == job_id))
    return asked is not None
