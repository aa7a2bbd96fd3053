"""Fault injection for SDK tests: record job outcomes as a worker would, without running them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from compute import JobStatus


def mark_built(api_server: Any, function_id: str) -> None:
    """Mark a function's build as finished successfully."""
    from compute.server.extensions import db
    from compute.server.models import BuildState
    from compute.server.transitions import set_build_state

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
    from compute.server.blobstore import job_log_key, job_result_key
    from compute.server.extensions import db
    from tests.job_moves import move_job

    with api_server.app.app_context():
        move_job(db.session, job.id, status, runtime, error, has_result=bool(result))
        store = api_server.app.extensions["blobstore"]
        if result:
            store.put(job_result_key(job.function_id, job.id), result)
        if log:
            lines = "".join(json.dumps({"date": d, "log": text}) + "\n" for d, text in log)
            raw_log = lines.encode()
        if raw_log is not None:
            store.put(job_log_key(job.function_id, job.id), raw_log)
