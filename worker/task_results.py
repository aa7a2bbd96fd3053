"""What a run task's end tells monitors (Flower, Celery events): its job's final status.

A job that failed or timed out ends its task with `JobFailed`, so a monitor counts it
among failures; any other end returns a short text: the job's status (`success`,
`canceled`), or why the attempt recorded none (`skipped`, `abandoned`).

Raising changes nothing of delivery. `JobFailed` is raised only after the job's final
status is committed; with `acks_late` Celery acknowledges a task that raised exactly as
one that returned (`acks_on_failure`, kept on), so the message is never redelivered for
it, and `reject_on_worker_lost` concerns only a pool process that died. The task lists
`JobFailed` in its `throws`, so the worker logs one line at INFO for it, no traceback:
a user's failing job is not an error of the worker.
"""

from __future__ import annotations

import sqlalchemy as sa

from compute.server.extensions import db
from compute.server.models import Job
from compute.statuses import JobStatus

from .jobs import AttemptResult

# A failure's reason can be a long line of the job's own; a monitor shows the start.
MAX_REASON_CHARS = 500


class JobFailed(Exception):
    """The task's job ended `failure` or `timeout`; the message says which and why."""


def task_result(job_id: str, attempt: AttemptResult) -> str:
    """The run task's result for a job whose attempt ended with `attempt`.

    Raises:
        JobFailed: the attempt gave the job a final status of failure or timeout.
    """
    if attempt is not AttemptResult.DONE:
        return str(attempt.value)
    row = db.session.execute(sa.select(Job.status, Job.error).where(Job.id == job_id)).first()
    # No transaction is left open between tasks (PostgreSQL would hold it idle).
    db.session.rollback()
    if row is None:
        return "deleted"
    status, error = row
    if status in (JobStatus.FAILURE, JobStatus.TIMEOUT):
        raise JobFailed(f"{status}: {(error or '')[:MAX_REASON_CHARS]}")
    return str(status)
