"""Canceling jobs from a request: record it, then ask the workers to stop running ones."""

from __future__ import annotations

from collections.abc import Sequence

from compute.server.extensions import db
from compute.server.transitions import Canceled, cancel_jobs
from worker.stop_requests import ask_to_stop


def cancel(function_id: str, job_ids: Sequence[str] | None = None) -> Canceled:
    """Cancel the function's unfinished jobs (those of `job_ids` only, if given).

    The caller has checked that the function is the requester's.
    """
    outcome = cancel_jobs(db.session, function_id, job_ids)
    db.session.commit()
    ask_to_stop(outcome.stopping)
    return outcome
