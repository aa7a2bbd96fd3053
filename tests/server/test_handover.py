"""An attempt that ends hands its function slot to the next queued job in the same
transaction (`finish_and_claim`): the counts come out as a finish then a claim would
leave them, and the cap holds even when it was lowered meanwhile."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from compute.server.extensions import db
from compute.server.models import Function, Job
from compute.server.transitions import (
    Claim,
    ClaimRefusal,
    claim_job,
    finish_and_claim,
    insert_jobs,
)
from compute.statuses import JobStatus
from tests.api.helpers import built_function
from tests.conftest import ApiClient, ApiServer

OWNER = "here:1"
LEASE_SECONDS = 60.0


def queued_jobs(api_server: ApiServer, api: ApiClient, count: int, **fields: Any) -> list[str]:
    function = built_function(api_server, api, **fields)
    row = db.session.get(Function, function["id"])
    assert row is not None
    jobs = insert_jobs(db.session, row, [([index], None) for index in range(count)])
    db.session.commit()
    return [job.id for job in jobs]


def claimed(job_id: str) -> Claim:
    claim = claim_job(db.session, job_id, OWNER, LEASE_SECONDS)
    assert isinstance(claim, Claim)
    return claim


def counts(function_id: str) -> dict[str, int]:
    function = db.session.get(Function, function_id)
    assert function is not None
    db.session.refresh(function)
    return {status.value: getattr(function, f"{status.value}_count") for status in JobStatus}


def job(job_id: str) -> Job:
    row = db.session.get(Job, job_id)
    assert row is not None
    db.session.refresh(row)
    return row


def finish(claim: Claim, next_job: str) -> tuple[bool, Claim | ClaimRefusal]:
    return finish_and_claim(
        db.session, claim, JobStatus.SUCCESS, 0.1, None, False, next_job, LEASE_SECONDS
    )


def test_the_slot_passes_to_the_next_job(api_server: ApiServer, api: ApiClient) -> None:
    with api_server.app.app_context():
        first, second, third = queued_jobs(api_server, api, 3, maximum_concurrency=1)
        claim = claimed(first)
        finished, handed = finish(claim, second)
        assert finished and isinstance(handed, Claim)
        assert (handed.job_id, handed.attempt, handed.lease_owner) == (second, 1, OWNER)
        assert job(first).status == JobStatus.SUCCESS and job(first).lease_owner is None
        assert job(second).status == JobStatus.RUNNING and job(second).lease_owner == OWNER
        assert counts(claim.function_id) == {
            "pending": 1,
            "running": 1,
            "success": 1,
            "failure": 0,
            "timeout": 0,
            "canceled": 0,
        }
        # The cap of one holds: the third waits for the second's slot.
        assert claim_job(db.session, third, "there:1", LEASE_SECONDS) is ClaimRefusal.AT_CAPACITY


def test_a_lowered_cap_keeps_the_slot_from_passing(api_server: ApiServer, api: ApiClient) -> None:
    with api_server.app.app_context():
        first, second, third, fourth = queued_jobs(api_server, api, 4, maximum_concurrency=2)
        claim, _ = claimed(first), claimed(second)
        db.session.execute(
            sa.update(Function)
            .where(Function.id == claim.function_id)
            .values(maximum_concurrency=1)
        )
        db.session.commit()
        finished, handed = finish(claim, third)
        assert finished and handed is ClaimRefusal.AT_CAPACITY
        assert job(first).status == JobStatus.SUCCESS
        assert job(third).status == JobStatus.PENDING and job(third).attempt == 0
        assert counts(claim.function_id)["running"] == 1
        assert job(fourth).status == JobStatus.PENDING


def test_a_job_gone_or_of_another_function_is_claimed_on_its_own(
    api_server: ApiServer, api: ApiClient
) -> None:
    with api_server.app.app_context():
        first, second = queued_jobs(api_server, api, 2)
        (elsewhere,) = queued_jobs(api_server, api, 1)
        claim = claimed(first)
        finished, handed = finish(claim, elsewhere)
        assert finished and isinstance(handed, Claim) and handed.job_id == elsewhere
        assert counts(claim.function_id)["running"] == 0
        assert counts(handed.function_id)["running"] == 1
        other = claimed(second)
        finished, handed = finish(other, elsewhere)  # already running: gone for a claim
        assert finished and handed is ClaimRefusal.GONE
        assert counts(claim.function_id) == {
            "pending": 0,
            "running": 0,
            "success": 2,
            "failure": 0,
            "timeout": 0,
            "canceled": 0,
        }


def test_an_attempt_that_lost_its_job_records_nothing(
    api_server: ApiServer, api: ApiClient
) -> None:
    with api_server.app.app_context():
        first, second = queued_jobs(api_server, api, 2)
        claim = claimed(first)
        db.session.execute(sa.update(Job).where(Job.id == first).values(lease_owner="x:9"))
        db.session.commit()
        finished, handed = finish(claim, second)
        assert not finished and isinstance(handed, Claim)
        assert job(first).status == JobStatus.RUNNING and job(first).lease_owner == "x:9"
        assert counts(claim.function_id)["running"] == 2
