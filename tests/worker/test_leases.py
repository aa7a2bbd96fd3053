"""One lease keeper per process renews every attempt's lease when it falls due, tells an
attempt that lost its job, and stays quiet about attempts that have ended."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import sqlalchemy as sa

from compute.server.extensions import db
from compute.server.models import Function, Job
from compute.server.transitions import Claim, claim_job, finish_job, insert_jobs
from compute.statuses import JobStatus
from tests.api.helpers import built_function
from tests.conftest import ApiClient, ApiServer
from worker.leases import Heartbeat

LEASE_SECONDS = 0.6


def claimed(api_server: ApiServer, api: ApiClient, owner: str) -> Claim:
    function = built_function(api_server, api)
    with api_server.app.app_context():
        row = db.session.get(Function, function["id"])
        assert row is not None
        (job,) = insert_jobs(db.session, row, [([1], None)])
        db.session.commit()
        claim = claim_job(db.session, job.id, owner, LEASE_SECONDS)
        assert isinstance(claim, Claim)
        return claim


def lease_expiry(api_server: ApiServer, job_id: str) -> Any:
    with api_server.app.app_context():
        return db.session.scalar(sa.select(Job.lease_expires_at).where(Job.id == job_id))


def test_leases_are_renewed_while_attempts_run(api_server: ApiServer, api: ApiClient) -> None:
    first, second = claimed(api_server, api, "here:1"), claimed(api_server, api, "here:1")
    with api_server.app.app_context():
        engine = db.engine
        granted = [lease_expiry(api_server, claim.job_id) for claim in (first, second)]
        with Heartbeat(engine, first, LEASE_SECONDS), Heartbeat(engine, second, LEASE_SECONDS):
            time.sleep(LEASE_SECONDS * 2)
            renewed = [lease_expiry(api_server, claim.job_id) for claim in (first, second)]
    assert all(later > earlier for later, earlier in zip(renewed, granted))


def test_an_attempt_whose_job_was_taken_over_is_told(api_server: ApiServer, api: ApiClient) -> None:
    claim = claimed(api_server, api, "here:2")
    with api_server.app.app_context():
        db.session.execute(sa.update(Job).where(Job.id == claim.job_id).values(lease_owner="x:1"))
        db.session.commit()
        with Heartbeat(db.engine, claim, LEASE_SECONDS) as beat:
            assert beat.lost.wait(timeout=LEASE_SECONDS * 3)


def test_an_attempt_that_ended_is_not_reported_lost(
    api_server: ApiServer, api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    claim = claimed(api_server, api, "here:3")
    with api_server.app.app_context(), caplog.at_level(logging.WARNING, "worker.leases"):
        with Heartbeat(db.engine, claim, LEASE_SECONDS) as beat:
            assert finish_job(db.session, claim, JobStatus.SUCCESS, 0.1, None, False)
        time.sleep(LEASE_SECONDS)
        assert not beat.lost.is_set()
    assert "no longer owns its job" not in caplog.text
