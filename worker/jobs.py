"""Run one attempt of a job: claim it, run it under its limits, record the outcome.

The database decides: the claim is conditional, the outcome is written only by the
attempt that holds the lease, and results and logs go to the blob store before the
final status, so a job reported `success` always has its result.
"""

from __future__ import annotations

import enum
import functools
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace

import billiard.process
import sqlalchemy as sa
from flask import current_app

from compute.server.blobstore import BlobStore, job_log_key, job_prefix, job_result_key
from compute.server.extensions import db
from compute.server.models import Function, Job
from compute.server.redaction import Redactor, job_output_redactor
from compute.server.settings import current_settings
from compute.server.stored_json import Unreadable
from compute.server.transitions import (
    CANCELED_REASON,
    Claim,
    ClaimRefusal,
    LostAttempt,
    claim_job,
    finish_and_claim,
    finish_job,
    recover_lost_attempt,
    release_for_retry,
)
from compute.statuses import JobStatus

from .attempt_watch import LiveAttempt
from .execution.executor import ExecutorPool
from .execution.job_limits import JobLimits
from .execution.job_monitor import Ending, ProcessOutcome, run_process
from .execution.job_result import JobResult
from .execution.job_user import job_identities
from .execution.joblog import JobLog
from .execution.scratch import job_scratch_root
from .lease_owners import worker_identity
from .leases import Heartbeat
from .publishing import broker_client
from .stop_requests import stop_asked
from .workspace import FunctionCode, PreparationError, prepare_function

logger = logging.getLogger(__name__)

# Warm executors of this worker process (each Celery pool process has its own).
EXECUTORS = ExecutorPool()


class AttemptResult(enum.Enum):
    DONE = "done"  # a final status was recorded
    RETRY = "retry"  # the job is pending again and needs another message
    AT_CAPACITY = "at_capacity"  # not started: the function runs its maximum already
    SKIPPED = "skipped"  # nothing to do: deleted, finished, or claimed elsewhere
    ABANDONED = "abandoned"  # stopped: the lease was lost and the job given to another


@dataclass(frozen=True)
class Verdict:
    status: JobStatus
    error: str | None
    retryable: bool


def judge(outcome: ProcessOutcome, limits: JobLimits) -> Verdict:
    """Map how the process ended to the job's status and whether a retry may follow."""
    if outcome.ending is Ending.CANCELED:
        return Verdict(JobStatus.CANCELED, CANCELED_REASON, False)
    if outcome.ending is Ending.TIMED_OUT:
        return Verdict(
            JobStatus.TIMEOUT, f"exceeded its {limits.timeout_seconds:g} s timeout", False
        )
    if outcome.ending is Ending.OUT_OF_MEMORY:
        return Verdict(JobStatus.FAILURE, f"exceeded its {limits.memory_mb} MB memory limit", True)
    if outcome.ending is Ending.DISK_EXCEEDED:
        return Verdict(
            JobStatus.FAILURE,
            f"wrote more than its {limits.disk_mb} MB of scratch space (COMPUTE_JOB_DISK_MB)",
            True,
        )
    if outcome.refused_result is not None:
        # Final: the same call would return the same value again.
        return Verdict(JobStatus.FAILURE, outcome.refused_result, False)
    if outcome.failure is not None:
        return Verdict(JobStatus.FAILURE, outcome.failure, True)
    if outcome.exit_code != 0:
        return Verdict(JobStatus.FAILURE, f"exited with code {outcome.exit_code}", True)
    if outcome.result is None:
        # `sys.exit(0)` (or `os._exit(0)`) inside the function: it never returned.
        return Verdict(JobStatus.FAILURE, "exited with code 0 before its function returned", True)
    return Verdict(JobStatus.SUCCESS, None, False)


@functools.cache
def _output_redactor() -> Redactor:
    # Made once per worker process: its secrets are the configuration's, which is fixed.
    return job_output_redactor(current_app.config)


# One read of what an attempt needs once its job is claimed: the arguments, the limits
# and the code. Built once: it runs on every job's path, where building it costs more
# than running it.
_WORK_OF_JOB = (
    sa.select(
        Job.args,
        Job.kwargs,
        Function.cpus,
        Function.memory,
        Function.timeout,
        Function.retry_count,
        *FunctionCode.COLUMNS,
    )
    .join(Function, Function.id == Job.function_id)
    .where(Job.id == sa.bindparam("claimed_job"))
)


def function_of_job(job_id: str) -> str | None:
    """The function `job_id` belongs to; None once the job is deleted."""
    return db.session.scalar(sa.select(Job.function_id).where(Job.id == job_id))


@dataclass
class Handover:
    """Lets an attempt that ends give its function slot straight to the function's next
    queued job (`transitions.finish_and_claim`), as the queue drain asks.

    Attributes:
        next_job: takes the next queued job's id, or None when there is none to take.
        job_id: the job it took, once an attempt asked for one.
        claimed: that job's claim, or why it has none.
    """

    next_job: Callable[[], str | None]
    job_id: str | None = None
    claimed: Claim | ClaimRefusal | None = None


def run_attempt(job_id: str, handover: Handover | None = None) -> AttemptResult:
    """Claim `job_id` and run one attempt of it in this worker."""
    lease_seconds = current_settings().job_lease_seconds
    claim = claim_job(db.session, job_id, worker_identity(), lease_seconds)
    if claim is ClaimRefusal.AT_CAPACITY:
        return AttemptResult.AT_CAPACITY
    if claim is ClaimRefusal.GONE:
        return AttemptResult.SKIPPED
    assert isinstance(claim, Claim)
    return run_claimed_attempt(claim, handover)


def run_claimed_attempt(claim: Claim, handover: Handover | None = None) -> AttemptResult:
    """Run one attempt of a job this worker has claimed."""
    with Heartbeat(db.engine, claim, current_settings().job_lease_seconds) as heartbeat:
        try:
            return _run_claimed(claim, heartbeat, handover)
        except Exception as error:
            logger.exception(
                "attempt %d of job %s failed in the worker", claim.attempt, claim.job_id
            )
            reason = f"the worker failed running attempt {claim.attempt}: {error!r}"
            return _give_back(claim, reason)


def _node_name() -> str:
    return f"worker node {socket.gethostname()}"


def _why(error: Exception) -> str:
    """What a job's owner may read of a worker's own failure: its own words for a
    preparation failure (redacted as build logs are), else only the kind of failure, as
    other exceptions may name the service's endpoints."""
    if isinstance(error, PreparationError):
        return str(error)
    return f"{type(error).__name__} (the worker's log has the details)"


def _give_back(claim: Claim, reason: str) -> AttemptResult:
    """End an attempt the worker itself failed, on the service's budget, not the user's.

    Without this the job would wait for its lease to run out to be found lost.
    """
    db.session.rollback()
    budget = current_settings().lost_worker_retries
    status = recover_lost_attempt(db.session, LostAttempt.of(claim), budget, reason)
    if status is JobStatus.PENDING:
        return AttemptResult.RETRY
    return AttemptResult.DONE if status is not None else AttemptResult.SKIPPED


def _run_claimed(
    claim: Claim, heartbeat: Heartbeat, handover: Handover | None = None
) -> AttemptResult:
    settings = current_settings()
    row = db.session.execute(_WORK_OF_JOB, {"claimed_job": claim.job_id}).first()
    if row is None:
        # Deleted since the claim committed (deleting a running job counts it out itself):
        # there is nothing left to run or to record.
        logger.info("job %s was deleted before attempt %d started", claim.job_id, claim.attempt)
        return AttemptResult.SKIPPED
    args, kwargs, cpus, memory, timeout, retry_count, *code = row
    function = FunctionCode(*code)
    limits = JobLimits(
        cpus=cpus,
        memory_mb=memory,
        timeout_seconds=timeout,
        kill_grace_seconds=settings.kill_grace_seconds,
        disk_mb=settings.job_disk_mb,
        slot=_slot(),
    )
    log = JobLog(redact=_output_redactor())
    log.add(f"[attempt {claim.attempt}]")
    for value in (args, kwargs):
        if isinstance(value, Unreadable):
            # Stored by an older version: no attempt could ever read it; final, not retried.
            reason = f"its stored arguments cannot be read: {value.reason}"
            log.add(f"[{reason}]")
            return _record(
                claim, log, None, Verdict(JobStatus.FAILURE, reason, False), 0.0, retry_count
            )
    try:
        env_python, bundle_dir = prepare_function(function)
    except Exception as error:  # noqa: BLE001 - any preparation failure gives the job back
        # The function built once already, so this is this machine's trouble (its store
        # connection, disk or interpreters), not the user's code: the job goes back for
        # any node to take, on the service's budget, and the function stays built.
        logger.exception("could not prepare function %s", function.id)
        return _give_back(claim, f"{_node_name()} could not prepare the function: {_why(error)}")
    # No transaction stays open while the job runs (its heartbeat has a connection of
    # its own).
    db.session.rollback()
    watch = LiveAttempt(
        current_app.extensions["blobstore"],
        claim.function_id,
        claim.job_id,
        log,
        _stop_check(settings.redis_url, claim.job_id),
    )
    outcome = run_process(
        str(env_python),
        bundle_dir,
        args,
        kwargs,
        limits,
        log,
        enforcement=settings.resource_enforcement,
        executors=EXECUTORS if settings.warm_executors else None,
        abandon=heartbeat.lost,
        identities=job_identities(settings),
        max_result_bytes=settings.max_result_bytes,
        scratch_root=job_scratch_root(settings.work_dir),
        watch=watch,
    )
    # Whatever becomes of the attempt, the worker's copy of its result goes with it.
    with outcome:
        if outcome.ending is Ending.ABANDONED or heartbeat.lost.is_set():
            # Another attempt owns the job now; its log and outcome are its own.
            return AttemptResult.ABANDONED
        if outcome.ending is Ending.CANCELED and _deleted(claim):
            # Stopped because its job was deleted: nothing is recorded, and the live log
            # written since the deletion removed the job's blobs goes too.
            current_app.extensions["blobstore"].delete_prefix(
                job_prefix(claim.function_id, claim.job_id)
            )
            return AttemptResult.SKIPPED
        verdict = judge(outcome, limits)
        if verdict.status is JobStatus.CANCELED:
            log.add("[job canceled: stopped at its owner's request]")
        elif verdict.error:
            # Text the job wrote: the operator's secrets are hidden in it as in its output.
            verdict = replace(verdict, error=_output_redactor()(verdict.error))
            log.add(f"[job {verdict.status}: {verdict.error}]")
        return _record(
            claim, log, outcome.result, verdict, outcome.runtime, retry_count, handover, watch
        )


def _slot() -> int:
    """This pool process's index among the node's (0 outside a Celery pool)."""
    return int(getattr(billiard.process.current_process(), "index", 0) or 0)


def _deleted(claim: Claim) -> bool:
    gone = db.session.scalar(sa.select(Job.id).where(Job.id == claim.job_id)) is None
    db.session.rollback()
    return gone


def _stop_check(redis_url: str | None, job_id: str) -> Callable[[], bool]:
    """Whether the job's owner has canceled it, as the broker says."""
    if not redis_url:
        return lambda: False
    client = broker_client(redis_url)
    return lambda: stop_asked(client, job_id)


def _store_result(store: BlobStore, key: str, result: JobResult) -> None:
    """Store the value as the worker holds it: one that is in memory in one piece (the
    common case, and the cheaper call), one spooled to disk streamed, never read whole."""
    if result.in_memory:
        store.put(key, result.value_bytes())
    else:
        store.put_stream(key, result.stream())


def _record(
    claim: Claim,
    log: JobLog,
    result: JobResult | None,
    verdict: Verdict,
    runtime: float,
    retry_count: int,
    handover: Handover | None = None,
    watch: LiveAttempt | None = None,
) -> AttemptResult:
    from . import metrics

    metrics.attempt_judged(claim.function_id, verdict.status, verdict.error)
    store = current_app.extensions["blobstore"]
    log_key = job_log_key(claim.function_id, claim.job_id)
    # Earlier attempts' logs first; a live log has read them already, and written over
    # the key since.
    earlier = watch.earlier_log() if watch is not None else store.get(log_key) or b""
    store.put(log_key, earlier + log.to_bytes())
    has_result = False
    if verdict.status is JobStatus.SUCCESS and result is not None and result.has_value:
        _store_result(store, job_result_key(claim.function_id, claim.job_id), result)
        has_result = True
    if verdict.retryable and claim.failed_attempts <= retry_count:
        released = release_for_retry(db.session, claim, verdict.error or "failed")
        if released:
            metrics.attempt_retried(claim.function_id)
        return AttemptResult.RETRY if released else AttemptResult.SKIPPED
    next_job = handover.next_job() if handover is not None else None
    if next_job is None:
        finished = finish_job(db.session, claim, verdict.status, runtime, verdict.error, has_result)
    else:
        assert handover is not None
        handover.job_id = next_job
        finished, handover.claimed = finish_and_claim(
            db.session,
            claim,
            verdict.status,
            runtime,
            verdict.error,
            has_result,
            next_job,
            current_settings().job_lease_seconds,
        )
    if not finished:
        return AttemptResult.SKIPPED
    metrics.job_finished(verdict.status, runtime)
    # One line per terminal write: the fence lets exactly one attempt of a job get here.
    logger.info(
        "terminal record: job=%s attempt=%d status=%s",
        claim.job_id,
        claim.attempt,
        verdict.status.value,
    )
    return AttemptResult.DONE
