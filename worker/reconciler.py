"""The reconciler: finds work the broker or a worker lost, and sets it going again.

The database is the record and the broker only a doorbell, so two kinds of loss are
repaired here, every few seconds, by a thread in each worker's main process:

- A running attempt whose worker is gone. A worker on this host whose process has died
  is known at once; elsewhere, a lease that ran out says so. The attempt is ended
  (fenced, so a live attempt is never taken over), the job goes back to pending on the
  service's own lost-worker budget and is published again. Leases are only expired after
  the database has been reachable for a whole lease: after an outage every live worker
  gets the time to renew before anyone is presumed lost.
- A pending job without a message (a Redis restart, an API killed between commit and
  publish): for each built function with pending jobs, when the broker holds fewer of
  its messages than it has pending jobs, the missing ones are published again. Builds
  whose request was lost are requested again the same way.

The broker part takes a short Redis lock, so one reconciler in the fleet does it at a
time. Every write is conditional, so overlapping reconcilers only repeat a doorbell.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import psutil
import redis
import sqlalchemy as sa
from celery import Celery
from flask import Flask
from kombu.exceptions import KombuError

from compute.server.dispatch import BUILD_QUEUE, BUILD_TASK, function_queue, publishing_key
from compute.server.extensions import db
from compute.server.models import BuildState, Function, Job, utcnow
from compute.server.settings import Settings
from compute.server.transitions import LostAttempt, recover_lost_attempt
from compute.statuses import JobStatus

from .broker_scan import delivered_job_ids, waiting_count, waiting_job_ids
from .execution.cgroups import remove_stale
from .execution.host_enforcement import select_enforcement
from .fork_guard import database_work
from .lease_owners import local_owner_prefix, owner_pid, worker_identity
from .metrics import lost_attempt_recovered
from .publishing import (
    broker_client,
    consume_function_queue,
    publish_jobs,
    publish_jobs_marked,
)

logger = logging.getLogger(__name__)

LOCK_KEY = "compute:reconciler:lock"
RECOVERY_BATCH = 500
ID_CHUNK = 1000


@dataclass(frozen=True)
class ReconcilerSettings:
    lease_seconds: float
    lost_worker_retries: int
    interval_seconds: float
    republish_grace_seconds: float
    build_timeout_seconds: float
    enforcement: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ReconcilerSettings:
        return cls(
            lease_seconds=settings.job_lease_seconds,
            lost_worker_retries=settings.lost_worker_retries,
            interval_seconds=settings.reconcile_interval_seconds,
            republish_grace_seconds=settings.republish_grace_seconds,
            build_timeout_seconds=settings.build_timeout_seconds,
            enforcement=settings.resource_enforcement,
        )


@dataclass
class SweepReport:
    recovered: int = 0  # lost attempts whose job is pending again
    failed: int = 0  # lost attempts whose job ran out of lost-worker budget
    republished: int = 0  # pending jobs whose message was missing
    rebuilt: int = 0  # builds whose request was missing

    def __bool__(self) -> bool:
        return bool(self.recovered or self.failed or self.republished or self.rebuilt)


@dataclass
class Reconciler:
    flask_app: Flask
    celery: Celery
    settings: ReconcilerSettings
    # When the database was last seen reachable without a break (monotonic seconds).
    database_healthy_since: float | None = None
    _builds_missing: set[str] = field(default_factory=set)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="compute-reconciler", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self.settings.interval_seconds):
            # The worker's main process forks pool processes: never in the middle of this.
            with database_work():
                self.sweep()

    def sweep(self) -> SweepReport:
        """One pass over lost attempts and lost messages; errors are logged, not raised."""
        report = SweepReport()
        with self.flask_app.app_context():
            try:
                self._recover_lost_attempts(report)
            except sa.exc.SQLAlchemyError as error:
                self.database_healthy_since = None
                logger.warning("reconciler: the database is unreachable: %s", error)
                db.session.remove()
                return report
            except (redis.RedisError, KombuError, OSError) as error:
                logger.warning("reconciler: could not publish recovered jobs: %s", error)
            try:
                if self._take_lock():
                    self._republish_missing_jobs(report)
                    self._request_missing_builds(report)
            except (sa.exc.SQLAlchemyError, redis.RedisError, KombuError, OSError) as error:
                logger.warning("reconciler: could not check the broker: %s", error)
            finally:
                db.session.remove()
        if report:
            logger.info("reconciler: %s", report)
        return report

    # Lost attempts -------------------------------------------------------------------

    def _recover_lost_attempts(self, report: SweepReport) -> None:
        db.session.execute(sa.select(1))
        now = time.monotonic()
        if self.database_healthy_since is None:
            self.database_healthy_since = now
        lost = self._attempts_of_dead_local_workers()
        if now - self.database_healthy_since >= self.settings.lease_seconds:
            lost.extend(_attempts_with_expired_leases(utcnow(), exclude={a.job_id for a in lost}))
        pending: dict[str, list[str]] = defaultdict(list)
        for attempt in lost:
            reason = f"attempt {attempt.attempt} was lost with its worker {attempt.lease_owner}"
            status = recover_lost_attempt(
                db.session, attempt, self.settings.lost_worker_retries, reason
            )
            if status is JobStatus.PENDING:
                pending[attempt.function_id].append(attempt.job_id)
                report.recovered += 1
            elif status is JobStatus.FAILURE:
                report.failed += 1
            if status is not None:
                lost_attempt_recovered(status)
                logger.warning("reconciler: job %s: %s", attempt.job_id, reason)
        for function_id, job_ids in pending.items():
            consume_function_queue(self.celery, function_id)
            publish_jobs(self.celery, function_id, job_ids)

    def _attempts_of_dead_local_workers(self) -> list[LostAttempt]:
        """Running attempts claimed by worker processes of this host that have died."""
        prefix = local_owner_prefix()
        rows = db.session.execute(
            sa.select(
                Job.id,
                Job.function_id,
                Job.attempt,
                Job.lease_owner,
                Job.lost_count,
                Job.start_date,
            ).where(
                Job.status == JobStatus.RUNNING.value,
                Job.lease_owner.startswith(prefix, autoescape=True),
            )
        ).all()
        dead = [row for row in rows if _process_is_gone(row.lease_owner, row.start_date)]
        if dead:
            # Their job processes may outlive them in their cgroups: end those first,
            # so the next attempt is the only one alive.
            support = select_enforcement(self.settings.enforcement).support
            if support is not None:
                remove_stale(support)
        return [
            LostAttempt(row.id, row.function_id, row.attempt, row.lease_owner, row.lost_count)
            for row in dead
        ]

    # Lost messages ---------------------------------------------------------------------

    def _take_lock(self) -> bool:
        client = broker_client(self.celery.conf.broker_url)
        ttl_ms = max(100, int(self.settings.interval_seconds * 1000 * 0.9))
        return bool(client.set(LOCK_KEY, worker_identity(), nx=True, px=ttl_ms))

    def _republish_missing_jobs(self, report: SweepReport) -> None:
        functions = db.session.execute(
            sa.select(Function.id, Function.pending_count).where(
                Function.build_state == BuildState.BUILT, Function.pending_count > 0
            )
        ).all()
        if not functions:
            return
        client = broker_client(self.celery.conf.broker_url)
        delivered = delivered_job_ids(client, max_age_seconds=self.settings.lease_seconds)
        for function_id, pending_count in functions:
            queue = function_queue(function_id)
            held = delivered.get(queue, set())
            if waiting_count(client, queue) + len(held) >= pending_count:
                continue
            if client.exists(publishing_key(function_id)):
                continue  # a publish is under way; what it has not sent yet is not lost
            present = waiting_job_ids(client, queue) | held
            settled = self._settled_pending_jobs(function_id)
            missing = [job_id for job_id in settled if job_id not in present]
            if not missing:
                continue
            _mark_enqueued(missing)
            db.session.commit()
            consume_function_queue(self.celery, function_id)
            publish_jobs_marked(self.celery, function_id, missing)
            report.republished += len(missing)
            logger.warning(
                "reconciler: %d pending jobs of %s had no message; published them again",
                len(missing),
                function_id,
            )

    def _settled_pending_jobs(self, function_id: str) -> list[str]:
        """Pending jobs that became pending longer ago than a publish takes to arrive."""
        cutoff = utcnow() - dt.timedelta(seconds=self.settings.republish_grace_seconds)
        return list(
            db.session.scalars(
                sa.select(Job.id)
                .where(
                    Job.function_id == function_id,
                    Job.status == JobStatus.PENDING.value,
                    sa.or_(Job.enqueued_at.is_(None), Job.enqueued_at < cutoff),
                )
                .order_by(Job.creation_date, Job.id)
            )
        )

    def _request_missing_builds(self, report: SweepReport) -> None:
        """Ask again for builds whose request is in no queue, two sweeps in a row."""
        building = set(
            db.session.scalars(
                sa.select(Function.id).where(Function.build_state == BuildState.BUILDING)
            )
        )
        if not building:
            self._builds_missing = set()
            return
        client = broker_client(self.celery.conf.broker_url)
        # A build may run for its whole timeout while its request stays delivered.
        max_age = self.settings.build_timeout_seconds + self.settings.lease_seconds
        present = waiting_job_ids(client, BUILD_QUEUE) | delivered_job_ids(client, max_age).get(
            BUILD_QUEUE, set()
        )
        missing = building - present
        for function_id in missing & self._builds_missing:
            self.celery.send_task(BUILD_TASK, args=[function_id], queue=BUILD_QUEUE)
            report.rebuilt += 1
            logger.warning("reconciler: the build of %s had no request; asked again", function_id)
        self._builds_missing = missing - self._builds_missing


def _attempts_with_expired_leases(now: dt.datetime, exclude: set[str]) -> list[LostAttempt]:
    rows = db.session.execute(
        sa.select(Job.id, Job.function_id, Job.attempt, Job.lease_owner, Job.lost_count)
        .where(Job.status == JobStatus.RUNNING.value, Job.lease_expires_at < now)
        .limit(RECOVERY_BATCH)
    ).all()
    return [
        LostAttempt(job_id, function_id, attempt, lease_owner, lost_count, lease_ran_out=True)
        for job_id, function_id, attempt, lease_owner, lost_count in rows
        if job_id not in exclude and lease_owner
    ]


def _process_is_gone(lease_owner: str, claimed_at: dt.datetime | None) -> bool:
    """Whether the local process named by `host:pid` no longer runs the claimed attempt."""
    pid = owner_pid(lease_owner)
    if pid is None:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        created = process.create_time()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
    # A process started after the claim reuses the pid of the one that made it.
    return claimed_at is not None and created > claimed_at.timestamp() + 1


def _mark_enqueued(job_ids: list[str]) -> None:
    now = utcnow()
    for start in range(0, len(job_ids), ID_CHUNK):
        db.session.execute(
            sa.update(Job)
            .where(Job.id.in_(job_ids[start : start + ID_CHUNK]))
            .values(enqueued_at=now)
            .execution_options(synchronize_session=False)
        )
