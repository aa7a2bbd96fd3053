"""Canceling over HTTP: what changes, for whom, and what a bad request changes (nothing).

The worker's side (stopping a running job) is tested with a real worker in
tests/worker/test_cancel_and_follow.py; here the jobs are moved by the transitions.
"""

from __future__ import annotations

from collections.abc import Callable

from compute.server.extensions import db
from compute.server.models import Job
from compute.server.transitions import LostAttempt, recover_lost_attempt
from compute.server.transitions.attempts import Claim, release_for_retry
from compute.statuses import JobStatus
from tests.api.helpers import built_function, db_snapshot, set_job_status, submit
from tests.conftest import ApiClient, ApiServer
from tests.conftest import TestUser as User

KNOWS_CANCELED = {"X-Compute-Statuses": "canceled"}


def _statistics(api: ApiClient, function_id: str, headers: dict[str, str] | None = None) -> dict:
    answer = api.get(f"/functions/{function_id}?include=job.statistics", headers=headers or {})
    return answer.json()["job_statistics"]


def test_a_pending_job_is_canceled_at_once(api_server: ApiServer, api: ApiClient) -> None:
    function = built_function(api_server, api)
    (job,) = submit(api, function["id"], [[1]])
    answer = api.post(f"/jobs/{job['id']}/cancel", headers=KNOWS_CANCELED)
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["error"]) == ("canceled", "canceled")
    assert _statistics(api, function["id"], KNOWS_CANCELED)["canceled"] == 1
    # The published client reads a failure, counted with the failures.
    legacy = api.get(f"/jobs/{job['id']}").json()
    assert (legacy["status"], legacy["error"]) == ("failure", "canceled")
    statistics = _statistics(api, function["id"])
    assert "canceled" not in statistics and statistics["failure"] == 1
    assert api.get(f"/functions/{function['id']}").json()["status"] == "failure"


def test_a_running_job_is_asked_to_stop_and_not_retried(
    api_server: ApiServer, api: ApiClient
) -> None:
    function = built_function(api_server, api)
    first, second = submit(api, function["id"], [[1], [2]])
    set_job_status(api_server, [first["id"], second["id"]], JobStatus.RUNNING)
    answer = api.post(f"/functions/{function['id']}/cancel", json={"job_ids": [first["id"]]})
    assert answer.json() == {"canceled": 0, "stopping": 1}
    assert api.get(f"/jobs/{first['id']}").json()["status"] == "running"
    with api_server.app.app_context():
        for job_id in (first["id"], second["id"]):
            row = db.session.get(Job, job_id)
            assert row is not None and row.lease_owner is not None
            claim = Claim(row.id, row.function_id, row.attempt, row.lease_owner, row.lost_count)
            if job_id == first["id"]:
                # A failed attempt of a canceled job ends it rather than trying again.
                assert release_for_retry(db.session, claim, "it failed")
            else:
                lost = LostAttempt.of(claim)
                assert recover_lost_attempt(db.session, lost, 3, "lost") is JobStatus.PENDING
            db.session.commit()
    assert api.get(f"/jobs/{first['id']}", headers=KNOWS_CANCELED).json()["status"] == "canceled"
    assert api.get(f"/jobs/{second['id']}").json()["status"] == "pending"
    counts = _statistics(api, function["id"], KNOWS_CANCELED)
    assert (counts["canceled"], counts["pending"], counts["running"]) == (1, 1, 0)


def test_a_lost_attempt_of_a_canceled_job_ends_it(api_server: ApiServer, api: ApiClient) -> None:
    function = built_function(api_server, api)
    (job,) = submit(api, function["id"], [[1]])
    set_job_status(api_server, [job["id"]], JobStatus.RUNNING)
    api.post(f"/jobs/{job['id']}/cancel")
    with api_server.app.app_context():
        row = db.session.get(Job, job["id"])
        assert row is not None and row.lease_owner is not None
        claim = Claim(row.id, row.function_id, row.attempt, row.lease_owner, row.lost_count)
        outcome = recover_lost_attempt(db.session, LostAttempt.of(claim), 3, "lost")
        assert outcome is JobStatus.CANCELED
        db.session.commit()


def test_ended_jobs_stay_as_they_are(api_server: ApiServer, api: ApiClient) -> None:
    function = built_function(api_server, api)
    done, failed = submit(api, function["id"], [[1], [2]])
    set_job_status(api_server, [done["id"]], JobStatus.SUCCESS, runtime=1.0)
    set_job_status(api_server, [failed["id"]], JobStatus.FAILURE, runtime=1.0)
    before = db_snapshot(api_server)
    assert api.post(f"/functions/{function['id']}/cancel").json() == {
        "canceled": 0,
        "stopping": 0,
    }
    assert api.post(f"/jobs/{done['id']}/cancel").json()["status"] == "success"
    assert db_snapshot(api_server) == before


def test_another_users_jobs_cannot_be_canceled(
    api_server: ApiServer, api: ApiClient, make_user: Callable[..., User]
) -> None:
    function = built_function(api_server, api)
    (job,) = submit(api, function["id"], [[1]])
    other: User = make_user()
    stranger = other.api
    assert stranger.post(f"/jobs/{job['id']}/cancel").status_code == 404
    assert stranger.post(f"/functions/{function['id']}/cancel").status_code == 404
    assert api.get(f"/jobs/{job['id']}").json()["status"] == "pending"


def test_a_bad_cancel_request_names_its_field_and_changes_nothing(
    api_server: ApiServer, api: ApiClient
) -> None:
    function = built_function(api_server, api)
    submit(api, function["id"], [[1]])
    before = db_snapshot(api_server)
    path = f"/functions/{function['id']}/cancel"
    for body in ({"job_ids": "all"}, {"job_ids": [1]}, {"jobs": []}):
        answer = api.post(path, json=body)
        assert answer.status_code == 422, body
        assert set(answer.json()["errors"]) == {next(iter(body))}
    assert (
        api.post(path, data="[]", headers={"Content-Type": "application/json"}).status_code == 400
    )
    assert api.post("/jobs/nope/cancel").status_code == 404
    assert db_snapshot(api_server) == before
