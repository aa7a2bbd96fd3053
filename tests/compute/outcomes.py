"""Fault injection for SDK tests: record job outcomes as a worker would, without running them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from compute import JobStatus


def mark_built(api_server: Any, function_id: str) -> None:
    """Mark a function's build as finished successfully."""
    from api.counters import set_build_state
    from api.extensions import db
    from api.models import BuildState

    with api_server.app.app_context():
        set_build_state(db.session, function_id, BuildState.BUILT)
        db.session.commit()


def finish_job(
    api_server: Any,
    job: Any,
    status: JobStatus = JobStatus.SUCCESS,
    result: bytes = b"",
    log: Sequence[tuple[str, str]] = (),
    runtime: float = 1.5,
    error: str | None = None,
    raw_log: bytes | None = None,
) -> None:
    """Move a pending job to a final status, storing its result, reason and log lines
    (`raw_log`, when given, is stored as the log as it is)."""
    import sqlalchemy as sa

    from api.blobstore import job_log_key, job_result_key
    from api.counters import record_job_changes
    from api.extensions import db
    from api.models import Job

    with api_server.app.app_context():
        db.session.execute(
            sa.update(Job)
            .where(Job.id == job.id)
            .values(status=status.value, runtime=runtime, has_result=bool(result), error=error)
        )
        record_job_changes(db.session, job.function_id, {JobStatus.PENDING: -1, status: 1})
        db.session.commit()
        store = api_server.app.extensions["blobstore"]
        if result:
            store.put(job_result_key(job.function_id, job.id), result)
        if log:
            lines = "".join(json.dumps({"date": d, "log": text}) + "\n" for d, text in log)
            raw_log = lines.encode()
        if raw_log is not None:
            store.put(job_log_key(job.function_id, job.id), raw_log)
