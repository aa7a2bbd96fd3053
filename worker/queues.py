"""Publishing from the worker side: jobs waiting for a build, retries, and queue consumers."""

from __future__ import annotations

import sqlalchemy as sa

from compute.server.extensions import db
from compute.server.models import BuildState, Function, Job
from compute.statuses import JobStatus

from .celery_app import app
from .publishing import consume_function_queue, publish_jobs_marked


def publish_pending_jobs(function_id: str) -> None:
    """Make every worker consume the function's queue and publish its pending jobs."""
    consume_function_queue(app, function_id)
    job_ids = list(
        db.session.scalars(
            sa.select(Job.id)
            .where(Job.function_id == function_id, Job.status == JobStatus.PENDING.value)
            .order_by(Job.creation_date, Job.id)
        )
    )
    publish_jobs_marked(app, function_id, job_ids)


def active_function_ids() -> list[str]:
    """Built functions with work outstanding: a starting worker consumes their queues."""
    return list(
        db.session.scalars(
            sa.select(Function.id).where(
                Function.build_state == BuildState.BUILT,
                (Function.pending_count + Function.running_count) > 0,
            )
        )
    )
