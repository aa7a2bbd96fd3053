"""Job state transitions a worker makes, each one conditional so that racing writers agree.

A claim takes a slot of the function's `maximum_concurrency` and the job in one
transaction: the slot is an UPDATE that succeeds only while `running_count` is under the
cap (the row lock makes it a global semaphore across every worker and machine), and the
job moves `pending` -> `running` only if still pending. A finish is fenced by the
attempt number and lease owner, so a superseded attempt cannot overwrite the outcome;
so are the heartbeat that renews a lease and the recovery of a lease that ran out.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

import sqlalchemy as sa

from compute.statuses import JobStatus

from ..extensions import DbSession, matched_rows
from ..models import BuildState, Function, Job, utcnow
from .counts import record_job_changes, status_update_values


class ClaimRefusal(enum.Enum):
    GONE = "gone"  # deleted, or no longer pending: nothing to do
    AT_CAPACITY = "at_capacity"  # the function already runs its maximum: try later


@dataclass(frozen=True)
class Claim:
    job_id: str
    function_id: str
    attempt: int
    lease_owner: str
    # Earlier attempts lost with their worker: they spend no part of retry_count.
    lost_count: int = 0

    @property
    def failed_attempts(self) -> int:
        """Attempts so far, this one included, that ran to an outcome of the user's code."""
        return self.attempt - self.lost_count


def claim_job(
    session: DbSession, job_id: str, worker_id: str, lease_seconds: float
) -> Claim | ClaimRefusal:
    """Move a pending job to running for `worker_id`, within its function's cap."""
    job = session.get(Job, job_id)
    if job is None or job.status != JobStatus.PENDING:
        session.rollback()
        return ClaimRefusal.GONE
    function = session.get(Function, job.function_id)
    if function is None or function.build_state != BuildState.BUILT:
        # Only a message can ask for this (a forged one, say): the job waits for its
        # build, which publishes it when it is done.
        session.rollback()
        return ClaimRefusal.GONE
    deltas: dict[str, int] = {JobStatus.PENDING: -1, JobStatus.RUNNING: 1}
    slot = session.execute(
        sa.update(Function)
        .where(
            Function.id == job.function_id,
            Function.build_state == BuildState.BUILT,
            Function.running_count < Function.maximum_concurrency,
        )
        .values(status_update_values(deltas))
        .execution_options(synchronize_session=False)
    )
    if matched_rows(slot) != 1:
        session.rollback()
        return ClaimRefusal.AT_CAPACITY
    now = utcnow()
    attempt = job.attempt + 1
    taken = session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.PENDING.value)
        .values(
            status=JobStatus.RUNNING.value,
            attempt=attempt,
            start_date=now,
            lease_owner=worker_id,
            lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
        )
        .execution_options(synchronize_session=False)
    )
    if matched_rows(taken) != 1:
        session.rollback()
        return ClaimRefusal.GONE
    session.commit()
    return Claim(job_id, job.function_id, attempt, worker_id, job.lost_count)


def _fenced(claim: Claim) -> sa.ColumnElement[bool]:
    return _attempt_is(claim.job_id, claim.attempt, claim.lease_owner)


def _attempt_is(job_id: str, attempt: int, lease_owner: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        Job.id == job_id,
        Job.status == JobStatus.RUNNING.value,
        Job.attempt == attempt,
        Job.lease_owner == lease_owner,
    )


def renew_lease(connection: sa.Connection, claim: Claim, lease_seconds: float) -> bool:
    """Extend the claim's lease; False when the attempt no longer owns the job.

    Renewal is fenced by owner and attempt, not by expiry: a lease that ran out while
    the database was unreachable is renewed as long as nobody recovered it meanwhile.
    """
    renewed = connection.execute(
        sa.update(Job)
        .where(_fenced(claim))
        .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease_seconds))
    )
    return renewed.rowcount == 1


def _end_attempt(session: DbSession, claim: Claim, status: JobStatus, **values: object) -> bool:
    """Move the claimed job from running to `status`, if this attempt still owns it."""
    return _leave_running(session, _fenced(claim), claim.function_id, status, **values)


def _leave_running(
    session: DbSession,
    fence: sa.ColumnElement[bool],
    function_id: str,
    status: JobStatus,
    **values: object,
) -> bool:
    """Move the job matching `fence` from running to `status`, giving back its slot."""
    done = session.execute(
        sa.update(Job)
        .where(fence)
        .values(status=status.value, lease_owner=None, lease_expires_at=None, **values)
        .execution_options(synchronize_session=False)
    )
    if matched_rows(done) != 1:
        session.rollback()
        return False
    record_job_changes(session, function_id, {JobStatus.RUNNING: -1, status: 1})
    session.commit()
    return True


def finish_job(
    session: DbSession,
    claim: Claim,
    status: JobStatus,
    runtime: float,
    error: str | None,
    has_result: bool,
) -> bool:
    """Record the attempt's final status; False when this attempt no longer owns the job."""
    return _end_attempt(
        session,
        claim,
        status,
        runtime=runtime,
        error=error,
        has_result=has_result,
        end_date=utcnow(),
    )


def release_for_retry(session: DbSession, claim: Claim, error: str) -> bool:
    """Put a failed attempt's job back to pending for another attempt."""
    return _end_attempt(session, claim, JobStatus.PENDING, error=error, enqueued_at=utcnow())


@dataclass(frozen=True)
class LostAttempt:
    """A running attempt whose worker is gone, as the reconciler found it."""

    job_id: str
    function_id: str
    attempt: int
    lease_owner: str
    lost_count: int
    # Found by its lease running out (rather than its owner process found dead): it is
    # recovered only if the lease is still out, so a renewal in between keeps the attempt.
    lease_ran_out: bool = False

    @classmethod
    def of(cls, claim: Claim) -> LostAttempt:
        """The claim's own attempt, as one to give back."""
        return cls(
            claim.job_id, claim.function_id, claim.attempt, claim.lease_owner, claim.lost_count
        )


def recover_lost_attempt(
    session: DbSession, lost: LostAttempt, lost_worker_retries: int, reason: str
) -> JobStatus | None:
    """End an attempt whose worker was lost: pending again, or failed past the budget.

    Fenced like a finish, so an attempt that finished since it was found, or renewed the
    lease it was found without, is left alone (None). The function's slot is given back.
    """
    now = utcnow()
    lost_count = lost.lost_count + 1
    if lost_count > lost_worker_retries:
        status = JobStatus.FAILURE
        values: dict[str, object] = {
            "error": f"{reason}; its worker was lost {lost_count} times, the most allowed "
            f"is {lost_worker_retries}",
            "end_date": now,
        }
    else:
        status = JobStatus.PENDING
        values = {"error": reason, "enqueued_at": now}
    fence = _attempt_is(lost.job_id, lost.attempt, lost.lease_owner)
    if lost.lease_ran_out:
        fence = sa.and_(fence, Job.lease_expires_at < now)
    if not _leave_running(
        session, fence, lost.function_id, status, lost_count=lost_count, **values
    ):
        return None
    return status
