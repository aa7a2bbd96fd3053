"""Move jobs to a status the way a worker does: through the service's transitions.

Tests that need a job `running`, `success` or `failure` without running code claim it
and finish it with the same calls a worker makes, so every count and status they then
read was written by `compute.server.transitions` and nothing else.
"""

from __future__ import annotations

from compute.server.extensions import DbSession
from compute.server.models import BuildState, Function, Job
from compute.server.transitions import (
    Claim,
    claim_job,
    finish_job,
    release_for_retry,
    set_build_state,
)
from compute.statuses import JobStatus

TEST_WORKER = "tests:0"
LEASE_SECONDS = 3600.0


def move_job(
    session: DbSession,
    job_id: str,
    status: str,
    runtime: float | None = None,
    error: str | None = None,
    has_result: bool = False,
) -> None:
    """Move a pending or running job to `status` and commit; fail the test if it cannot."""
    target = JobStatus(status)
    job = session.get(Job, job_id)
    assert job is not None, f"job {job_id} does not exist"
    if job.status == JobStatus.PENDING:
        if target == JobStatus.PENDING:
            return
        function = session.get(Function, job.function_id)
        assert function is not None
        if function.build_state != BuildState.BUILT:
            # Only a built function's jobs run: its build is done first, as it would be.
            set_build_state(session, function.id, BuildState.BUILT)
            session.commit()
        claim = claim_job(session, job_id, TEST_WORKER, LEASE_SECONDS)
        assert isinstance(claim, Claim), f"job {job_id} could not be claimed: {claim}"
    elif job.status == JobStatus.RUNNING and job.lease_owner is not None:
        claim = Claim(job.id, job.function_id, job.attempt, job.lease_owner, job.lost_count)
    else:
        raise AssertionError(f"job {job_id} is {job.status}: it can move no further")
    if target == JobStatus.RUNNING:
        return
    if target == JobStatus.PENDING:
        assert release_for_retry(session, claim, error or "released by a test")
        return
    assert finish_job(session, claim, target, runtime or 0.0, error, has_result)
