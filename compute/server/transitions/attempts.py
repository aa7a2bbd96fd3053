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
import functools
from dataclasses import dataclass

import sqlalchemy as sa

from compute.statuses import JobStatus

from ..extensions import DbSession, matched_rows
from ..models import BuildState, utcnow
from .cancels import CANCELED_REASON, cancel_requested
from .counts import FUNCTIONS, JOBS, record_job_changes, status_update_values


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


# A claim's statements, built once: they run on every job's path, where building them
# costs more than running them.
_PENDING_JOB = (
    sa.select(JOBS.c.function_id, JOBS.c.attempt, JOBS.c.lost_count)
    .join_from(JOBS, FUNCTIONS, FUNCTIONS.c.id == JOBS.c.function_id)
    .where(
        JOBS.c.id == sa.bindparam("claimed_job"),
        JOBS.c.status == JobStatus.PENDING.value,
        # Only a message can ask for an unbuilt function's job (a forged one, say): the
        # job waits for its build, which publishes it when it is done.
        FUNCTIONS.c.build_state == BuildState.BUILT,
    )
)
_TAKE_SLOT = (
    sa.update(FUNCTIONS)
    .where(
        FUNCTIONS.c.id == sa.bindparam("claimed_function"),
        FUNCTIONS.c.build_state == BuildState.BUILT,
        FUNCTIONS.c.running_count < FUNCTIONS.c.maximum_concurrency,
    )
    .values(status_update_values({JobStatus.PENDING: -1, JobStatus.RUNNING: 1}))
)


def _take_job_statement(*conditions: sa.ColumnElement[bool]) -> sa.Update:
    """Move a pending job to running, provided `conditions` hold too."""
    return (
        sa.update(JOBS)
        .where(
            JOBS.c.id == sa.bindparam("claimed_job"),
            JOBS.c.status == JobStatus.PENDING.value,
            # Unchanged since it was read: the attempt number counts every claim once.
            JOBS.c.attempt == sa.bindparam("seen_attempt"),
            *conditions,
        )
        .values(
            status=JobStatus.RUNNING.value,
            attempt=JOBS.c.attempt + 1,
            start_date=sa.bindparam("claimed_at"),
            lease_owner=sa.bindparam("owner"),
            lease_expires_at=sa.bindparam("expires_at"),
        )
    )


def _take_parameters(
    job_id: str, function_id: str, seen_attempt: int, owner: str, lease_seconds: float
) -> dict[str, object]:
    now = utcnow()
    return {
        "claimed_job": job_id,
        "claimed_function": function_id,
        "seen_attempt": seen_attempt,
        "claimed_at": now,
        "owner": owner,
        "expires_at": now + dt.timedelta(seconds=lease_seconds),
    }


_TAKE_JOB = _take_job_statement()
# The handover's claim: the next job moves to running only while its function has a
# slot free, the finishing attempt's already given back in the same transaction, so the
# cap holds even when it was lowered meanwhile.
_TAKE_HANDED_JOB = _take_job_statement(
    sa.exists().where(
        FUNCTIONS.c.id == sa.bindparam("claimed_function"),
        FUNCTIONS.c.build_state == BuildState.BUILT,
        FUNCTIONS.c.running_count < FUNCTIONS.c.maximum_concurrency,
    )
)


def claim_job(
    session: DbSession, job_id: str, worker_id: str, lease_seconds: float
) -> Claim | ClaimRefusal:
    """Move a pending job to running for `worker_id`, within its function's cap."""
    seen = session.execute(_PENDING_JOB, {"claimed_job": job_id}).first()
    if seen is None:
        session.rollback()
        return ClaimRefusal.GONE
    function_id, attempt, lost_count = seen
    slot = session.execute(_TAKE_SLOT, {"claimed_function": function_id})
    if matched_rows(slot) != 1:
        session.rollback()
        return ClaimRefusal.AT_CAPACITY
    taken = session.execute(
        _TAKE_JOB, _take_parameters(job_id, function_id, attempt, worker_id, lease_seconds)
    )
    if matched_rows(taken) != 1:
        session.rollback()
        return ClaimRefusal.GONE
    session.commit()
    return Claim(job_id, function_id, attempt + 1, worker_id, lost_count)


def _fenced(claim: Claim) -> sa.ColumnElement[bool]:
    return sa.and_(
        JOBS.c.id == claim.job_id,
        JOBS.c.status == JobStatus.RUNNING.value,
        JOBS.c.attempt == claim.attempt,
        JOBS.c.lease_owner == claim.lease_owner,
    )


def renew_lease(connection: sa.Connection, claim: Claim, lease_seconds: float) -> bool:
    """Extend the claim's lease; False when the attempt no longer owns the job.

    Renewal is fenced by owner and attempt, not by expiry: a lease that ran out while
    the database was unreachable is renewed as long as nobody recovered it meanwhile.
    """
    renewed = connection.execute(
        sa.update(JOBS)
        .where(_fenced(claim))
        .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease_seconds))
    )
    return renewed.rowcount == 1


@dataclass(frozen=True)
class _Fence:
    """The one attempt a move out of `running` may apply to."""

    job_id: str
    attempt: int
    lease_owner: str
    # Only while its lease is out at this time (a recovery found by the lease running out).
    lease_out_at: dt.datetime | None = None

    @classmethod
    def of(cls, claim: Claim) -> _Fence:
        return cls(claim.job_id, claim.attempt, claim.lease_owner)

    def leave(
        self, status: JobStatus, values: dict[str, object]
    ) -> tuple[sa.Update, dict[str, object]]:
        """The statement moving the fenced job out of running to `status`, setting
        `values` too, and its parameters."""
        names = tuple(sorted(values))
        parameters: dict[str, object] = {
            "fenced_job": self.job_id,
            "fenced_attempt": self.attempt,
            "fenced_owner": self.lease_owner,
            "new_status": status.value,
            **{f"new_{name}": values[name] for name in names},
        }
        if self.lease_out_at is not None:
            parameters["lease_out_at"] = self.lease_out_at
        return _leave_running_statement(names, self.lease_out_at is not None), parameters


@functools.cache
def _leave_running_statement(value_names: tuple[str, ...], lease_out: bool) -> sa.Update:
    # Built once per kind of move: a finish runs on every job's path, where building the
    # statement costs more than running it.
    fence = [
        JOBS.c.id == sa.bindparam("fenced_job"),
        JOBS.c.status == JobStatus.RUNNING.value,
        JOBS.c.attempt == sa.bindparam("fenced_attempt"),
        JOBS.c.lease_owner == sa.bindparam("fenced_owner"),
    ]
    if lease_out:
        fence.append(JOBS.c.lease_expires_at < sa.bindparam("lease_out_at"))
    return (
        sa.update(JOBS)
        .where(*fence)
        .values(
            status=sa.bindparam("new_status"),
            lease_owner=None,
            lease_expires_at=None,
            **{name: sa.bindparam(f"new_{name}") for name in value_names},
        )
    )


def _end_attempt(session: DbSession, claim: Claim, status: JobStatus, **values: object) -> bool:
    """Move the claimed job from running to `status`, if this attempt still owns it."""
    return _leave_running(session, _Fence.of(claim), claim.function_id, status, **values)


def _leave_running(
    session: DbSession,
    fence: _Fence,
    function_id: str,
    status: JobStatus,
    **values: object,
) -> bool:
    """Move the job `fence` names from running to `status`, giving back its slot.

    The function's row is written first, as a claim and a deletion lock it first: rows
    taken in one order by every writer cannot deadlock. A fence that no longer holds
    rolls both back.
    """
    statement, parameters = fence.leave(status, values)
    record_job_changes(session, function_id, {JobStatus.RUNNING: -1, status: 1})
    if matched_rows(session.execute(statement, parameters)) != 1:
        session.rollback()
        return False
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
    return _end_attempt(session, claim, status, **_finish_values(runtime, error, has_result))


def _finish_values(runtime: float, error: str | None, has_result: bool) -> dict[str, object]:
    return {"runtime": runtime, "error": error, "has_result": has_result, "end_date": utcnow()}


def finish_and_claim(
    session: DbSession,
    claim: Claim,
    status: JobStatus,
    runtime: float,
    error: str | None,
    has_result: bool,
    next_job_id: str,
    lease_seconds: float,
) -> tuple[bool, Claim | ClaimRefusal]:
    """Record the attempt's final status and hand its function slot to `next_job_id`, a
    job of the same function, in one transaction: one commit for both, where a finish
    and a claim take one each.

    Returns whether the attempt still owned its job (as `finish_job`), and the next
    job's claim or why there is none. When the slot cannot pass (the next job is gone
    or of another function, or the cap was lowered), the finish is recorded alone and
    the next job is claimed as `claim_job` would. The function's row is written first,
    as every writer of it does (`_leave_running`).
    """
    record_job_changes(session, claim.function_id, {JobStatus.RUNNING: -1, status: 1})
    statement, parameters = _Fence.of(claim).leave(
        status, _finish_values(runtime, error, has_result)
    )
    if matched_rows(session.execute(statement, parameters)) != 1:
        session.rollback()
        return False, claim_job(session, next_job_id, claim.lease_owner, lease_seconds)
    seen = session.execute(_PENDING_JOB, {"claimed_job": next_job_id}).first()
    if seen is not None and seen.function_id == claim.function_id:
        parameters = _take_parameters(
            next_job_id, claim.function_id, seen.attempt, claim.lease_owner, lease_seconds
        )
        if matched_rows(session.execute(_TAKE_HANDED_JOB, parameters)) == 1:
            record_job_changes(
                session, claim.function_id, {JobStatus.PENDING: -1, JobStatus.RUNNING: 1}
            )
            session.commit()
            return True, Claim(
                next_job_id, claim.function_id, seen.attempt + 1, claim.lease_owner, seen.lost_count
            )
    session.commit()
    return True, claim_job(session, next_job_id, claim.lease_owner, lease_seconds)


def release_for_retry(session: DbSession, claim: Claim, error: str) -> bool:
    """Put a failed attempt's job back to pending for another attempt, or end it
    `canceled` if its owner canceled it meanwhile."""
    if cancel_requested(session, claim.job_id):
        return finish_job(session, claim, JobStatus.CANCELED, 0.0, CANCELED_REASON, False)
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
    if cancel_requested(session, lost.job_id):
        status = JobStatus.CANCELED
        values: dict[str, object] = {"error": CANCELED_REASON, "end_date": now}
    elif lost_count > lost_worker_retries:
        status = JobStatus.FAILURE
        values = {
            "error": f"{reason}; its worker was lost {lost_count} times, the most allowed "
            f"is {lost_worker_retries}",
            "end_date": now,
        }
    else:
        status = JobStatus.PENDING
        values = {"error": reason, "enqueued_at": now}
    fence = _Fence(lost.job_id, lost.attempt, lost.lease_owner, now if lost.lease_ran_out else None)
    if not _leave_running(
        session, fence, lost.function_id, status, lost_count=lost_count, **values
    ):
        return None
    return status
