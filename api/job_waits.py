"""`GET /jobs/{id}?wait=S`: answer once the job is final, or after S seconds at most.

A caller that waits for a short job sees it end within milliseconds rather than at its
next poll. Each waiting request holds one of the API process's threads, so only a few
wait at once per process; past them a request is answered at once, as without `wait`,
and the caller falls back to polling. Only the job's status is read while waiting: one
indexed row, every few milliseconds, each read its own transaction so it sees the
worker's latest commit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from compute.server.extensions import db
from compute.server.models import Job
from compute.statuses import JobStatus

from .errors import BadRequest

MAX_WAIT_SECONDS = 5.0
CHECK_SECONDS = 0.005
# Of the API process's threads (four per gunicorn worker under `compute up`), the most
# that may sit in a wait: the others keep answering.
WAITERS_PER_PROCESS = 2

_waiters = threading.BoundedSemaphore(WAITERS_PER_PROCESS)
_FINAL = [status.value for status in JobStatus.final()]


def requested_wait(args: MultiDict[str, str]) -> float:
    """The `wait` query parameter in seconds; 0 without one."""
    raw = args.get("wait")
    if raw is None:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_WAIT_SECONDS:  # NaN fails both comparisons
        bound = f"a number of seconds from 0 to {MAX_WAIT_SECONDS:g}"
        raise BadRequest(f"'wait' must be {bound}.", {"wait": [f"must be {bound}"]})
    return seconds


@contextmanager
def _a_waiter() -> Iterator[bool]:
    """Whether this request may wait: a place among the process's waiters, held."""
    taken = _waiters.acquire(blocking=False)
    try:
        yield taken
    finally:
        if taken:
            _waiters.release()


def wait_until_final(job_id: str, seconds: float) -> None:
    """Return once job `job_id` is final, `seconds` passed, or this process has no room
    for another waiter; the caller reads the job afterwards."""
    if seconds <= 0:
        return
    deadline = time.monotonic() + seconds
    status = sa.select(Job.status).where(Job.id == job_id)
    with _a_waiter() as may_wait:
        while may_wait:
            final = db.session.scalar(status) in _FINAL
            db.session.rollback()  # the next read sees what was committed since
            if final or time.monotonic() >= deadline:
                return
            time.sleep(CHECK_SECONDS)
