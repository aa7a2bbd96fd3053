"""Tokens and admins: what a token is, when it stops working, and what an admin may do.

Every refused credential and every cross-user attempt is in the table of
`test_cross_user.py`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import jwt
import pytest
import sqlalchemy as sa

from compute.server.extensions import db
from compute.server.models import User
from compute.server.tokens import get_or_create_user, issue_token
from compute.statuses import JobStatus
from tests.api.helpers import (
    create_with_upload,
    put_bundle,
    set_job_status,
    submit,
)
from tests.conftest import ApiClient, ApiServer

if TYPE_CHECKING:
    from tests.conftest import TestUser


@pytest.fixture
def victim(api_server: ApiServer, make_user: Any) -> dict[str, Any]:
    """A user with a built function, pending and failed jobs, a result."""
    owner: TestUser = make_user()
    function, url = create_with_upload(owner.api)
    assert put_bundle(url).status_code == 200
    jobs = submit(owner.api, function["id"], [[1], [2], [3]])
    set_job_status(api_server, [jobs[0]["id"]], JobStatus.FAILURE, runtime=1.0)
    store = api_server.app.extensions["blobstore"]
    store.put(f"jobs/{function['id']}/{jobs[1]['id']}/result", b"secret")
    store.put(f"build-logs/{function['id']}.log", b"secret build")
    function = owner.api.get(f"/functions/{function['id']}").json()
    return {"user": owner, "function": function, "jobs": jobs}


def test_token_of_a_deleted_user_is_401(api_server: ApiServer, make_user: Any) -> None:
    doomed: TestUser = make_user()
    assert doomed.api.get("/functions").status_code == 200
    with api_server.app.app_context():
        db.session.execute(sa.delete(User).where(User.name == doomed.name))
        db.session.commit()
    response = doomed.api.get("/functions")
    assert response.status_code == 401
    # A new user of the same name is a different user: the old token stays dead.
    api_server.token(doomed.name)
    assert doomed.api.get("/functions").status_code == 401


def test_expired_token_names_the_reason(api_server: ApiServer) -> None:
    with api_server.app.app_context():
        expired = issue_token(get_or_create_user("expiring"), ttl_seconds=-10)
    response = ApiClient(api_server, expired).get("/functions")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_issued_tokens_live_long(api_server: ApiServer, user: TestUser) -> None:
    claims = jwt.decode(user.token, options={"verify_signature": False})
    assert claims["exp"] - time.time() > 24 * 3600
    assert claims["sub"] and user.token.count(".") == 2


def test_admin_sees_and_reads_everything(
    api_server: ApiServer, victim: dict[str, Any], make_user: Any
) -> None:
    admin = make_user(admin=True).api
    function_id, jobs = victim["function"]["id"], victim["jobs"]
    assert admin.get(f"/functions/{function_id}").json() == victim["function"]
    assert admin.get(f"/jobs/{jobs[1]['id']}").json()["function_id"] == function_id
    assert admin.get(f"/jobs/{jobs[1]['id']}/result").content == b"secret"
    assert admin.get(f"/functions/{function_id}/log").status_code == 200
    listed = admin.get("/jobs", params={"function_id": function_id}).json()
    assert [job["id"] for job in listed["data"]] == [job["id"] for job in jobs]
    assert listed["meta"]["total"] == 3
    functions = admin.get("/functions", params={"id": function_id}).json()
    assert functions["meta"]["total"] == 1
    everything = admin.get("/functions", params={"limit": 0}).json()["meta"]["total"]
    assert everything >= 1


def test_admin_acts_on_another_users_function(
    api_server: ApiServer, victim: dict[str, Any], make_user: Any
) -> None:
    admin = make_user(admin=True).api
    function_id = victim["function"]["id"]
    assert admin.post(f"/functions/{function_id}/bundle").json()["status"] == "running"
    rerun = admin.post("/jobs/rerun", json={"function_id": function_id}).json()
    assert [job["id"] for job in rerun] == [victim["jobs"][0]["id"]]
    owner = victim["user"].api
    assert owner.get(f"/jobs/{victim['jobs'][0]['id']}").json()["status"] == "pending"
