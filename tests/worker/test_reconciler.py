"""The reconciler's rules, swept by hand against a real database and a real Redis.

No worker runs here, so each sweep's effects are exactly the test's: which leases it
expires, and which messages it publishes again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from compute.server.dispatch import function_queue, publishing_key
from compute.server.extensions import db
from compute.server.models import BuildState, Function, Job, utcnow
from compute.server.tokens import get_or_create_user
from compute.server.transitions import LostAttempt, claim_job, insert_jobs, recover_lost_attempt
from compute.statuses import JobStatus
from tests.conftest import ApiServer, running_api
from tests.redis_databases import claimed_redis_url
from worker.broker_scan import job_id_of
from worker.publishing import publisher
from worker.reconciler import LOCK_KEY, Reconciler, ReconcilerSettings, SweepReport

LEASE_SECONDS = 1.0
HOUR = dt.timedelta(hours=1)


@dataclass
class Bench:
    server: ApiServer
    broker: redis.Redis
    reconciler: Reconciler

    def function(self) -> str:
        with self.server.app.app_context():
            owner = get_or_create_user("reconciled")
            function = Function(
                owner_id=owner.id,
                name="fn",
                image="python3.11:latest",
                cpus=1.0,
                memory=512,
                maximum_concurrency=4,
                timeout=60,
                retry_count=0,
                build_state=BuildState.BUILT,
                status="success",
            )
            db.session.add(function)
            db.session.commit()
            return function.id

    def pending_jobs(self, function_id: str, count: int) -> list[str]:
        """Committed and never published, as when the API dies before its publish."""
        with self.server.app.app_context():
            function = db.session.get(Function, function_id)
            jobs = insert_jobs(db.session, function, [([n], None) for n in range(count)])
            db.session.commit()
            return [job.id for job in jobs]

    def job(self, job_id: str) -> Job:
        with self.server.app.app_context():
            job = db.session.get(Job, job_id)
            db.session.expunge(job)
            return job

    def sweep(self) -> SweepReport:
        """A sweep as the next interval would run it: the last one's broker lock is gone."""
        self.broker.delete(LOCK_KEY)
        return self.reconciler.sweep()

    def queued(self, function_id: str) -> list[str | None]:
        """The job id of each message waiting on the function's queue, duplicates kept."""
        return [job_id_of(raw) for raw in self.broker.lrange(function_queue(function_id), 0, -1)]


@pytest.fixture(params=["sqlite", "postgresql"])
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bench]:
    with (
        claimed_redis_url() as url,
        running_api(request.param, tmp_path, {"REDIS_URL": url}) as server,
    ):
        settings = ReconcilerSettings(
            lease_seconds=LEASE_SECONDS,
            lost_worker_retries=1,
            interval_seconds=0.2,
            republish_grace_seconds=0.0,
            build_timeout_seconds=10,
            enforcement="portable",
        )
        broker = redis.Redis.from_url(url)
        yield Bench(server, broker, Reconciler(server.app, publisher(url), settings))
        broker.close()


def _database_unreachable(*args: object, **kwargs: object) -> None:
    raise sa.exc.OperationalError("SELECT", {}, OSError("connection refused"))


def _claim(bench: Bench, job_id: str, owner: str, lease_seconds: float) -> None:
    with bench.server.app.app_context():
        claim_job(db.session, job_id, owner, lease_seconds)


def test_no_lease_is_expired_before_the_database_has_been_healthy_for_a_lease(
    bench: Bench,
) -> None:
    (job_id,) = bench.pending_jobs(bench.function(), 1)
    _claim(bench, job_id, "elsewhere.example:7", lease_seconds=0.01)
    time.sleep(0.05)

    first = bench.sweep()  # just (re)connected: the lease may be renewed yet
    assert first.recovered == 0 and bench.job(job_id).status == JobStatus.RUNNING
    time.sleep(LEASE_SECONDS)
    second = bench.sweep()
    assert second.recovered == 1
    job = bench.job(job_id)
    assert (job.status, job.lost_count, job.lease_owner) == (JobStatus.PENDING, 1, None)


def test_a_database_outage_restarts_the_wait(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    (job_id,) = bench.pending_jobs(bench.function(), 1)
    bench.sweep()
    time.sleep(LEASE_SECONDS)
    _claim(bench, job_id, "elsewhere.example:8", lease_seconds=0.01)
    with monkeypatch.context() as patch:
        patch.setattr(
            "worker.reconciler._attempts_with_expired_leases",
            _database_unreachable,
        )
        bench.sweep()
    assert bench.reconciler.database_healthy_since is None
    assert bench.sweep().recovered == 0
    assert bench.job(job_id).status == JobStatus.RUNNING


def test_a_live_lease_is_left_alone(bench: Bench) -> None:
    (job_id,) = bench.pending_jobs(bench.function(), 1)
    _claim(bench, job_id, "elsewhere.example:9", lease_seconds=60)
    bench.sweep()
    time.sleep(LEASE_SECONDS)
    assert bench.sweep().recovered == 0
    assert bench.job(job_id).status == JobStatus.RUNNING


def test_a_job_lost_more_often_than_the_budget_fails(bench: Bench) -> None:
    (job_id,) = bench.pending_jobs(bench.function(), 1)
    bench.sweep()
    time.sleep(LEASE_SECONDS)
    for attempt in (1, 2):
        _claim(bench, job_id, f"elsewhere.example:{attempt}", lease_seconds=0.01)
        time.sleep(0.05)
        bench.sweep()
    job = bench.job(job_id)
    assert (job.status, job.lost_count, job.attempt) == (JobStatus.FAILURE, 2, 2)
    assert "its worker was lost 2 times, the most allowed is 1" in job.error


def test_only_missing_messages_are_published_again(bench: Bench) -> None:
    function_id = bench.function()
    jobs = bench.pending_jobs(function_id, 5)
    assert bench.sweep().republished == 5
    assert sorted(bench.queued(function_id)) == sorted(jobs)

    assert bench.sweep().republished == 0  # all present: nothing doubled
    bench.broker.lpop(function_queue(function_id), 2)
    assert bench.sweep().republished == 2
    assert sorted(bench.queued(function_id)) == sorted(jobs)


def test_jobs_being_published_are_not_published_twice(bench: Bench) -> None:
    function_id = bench.function()
    bench.pending_jobs(function_id, 3)
    bench.broker.set(publishing_key(function_id), "1", ex=30)
    assert bench.sweep().republished == 0
    bench.broker.delete(publishing_key(function_id))
    assert bench.sweep().republished == 3


def test_one_reconciler_at_a_time_checks_the_broker(bench: Bench) -> None:
    function_id = bench.function()
    bench.pending_jobs(function_id, 2)
    bench.broker.set(LOCK_KEY, "another-reconciler", ex=30)
    assert bench.reconciler.sweep().republished == 0
    assert bench.sweep().republished == 2


def test_jobs_younger_than_the_grace_are_left_to_their_publish(bench: Bench) -> None:
    bench.reconciler.settings = ReconcilerSettings(
        **{**bench.reconciler.settings.__dict__, "republish_grace_seconds": 60.0}
    )
    function_id = bench.function()
    bench.pending_jobs(function_id, 3)
    assert bench.sweep().republished == 0
    assert bench.queued(function_id) == []


def test_a_lease_renewed_after_it_was_found_out_is_kept(bench: Bench) -> None:
    (job_id,) = bench.pending_jobs(bench.function(), 1)
    _claim(bench, job_id, "elsewhere.example:10", lease_seconds=0.01)
    time.sleep(0.05)
    job = bench.job(job_id)
    found = LostAttempt(
        job_id, job.function_id, job.attempt, job.lease_owner, 0, lease_ran_out=True
    )
    with bench.server.app.app_context():
        db.session.execute(
            sa.update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow() + HOUR)
        )
        db.session.commit()
        assert recover_lost_attempt(db.session, found, 3, "lost") is None
    assert bench.job(job_id).status == JobStatus.RUNNING
