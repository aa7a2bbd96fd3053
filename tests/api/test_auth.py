"""Authentication and ownership: bad tokens are 401 everywhere; others' objects are 404."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import jwt
import pytest
import sqlalchemy as sa

from api.auth import get_or_create_user, issue_token
from api.extensions import db
from api.models import BuildState, User
from compute.statuses import JobStatus
from tests.api.helpers import (
    create_with_upload,
    db_snapshot,
    put_bundle,
    set_build,
    set_job_status,
    submit,
)
from tests.conftest import ApiClient, ApiServer

if TYPE_CHECKING:
    from tests.conftest import TestUser

Endpoint = tuple[str, str, Any]


def endpoints(function_id: str, job_id: str) -> list[Endpoint]:
    """Every authenticated endpoint, as (method, path, JSON body)."""
    return [
        ("POST", "/credentials", {"client_id": None, "client_secret": None}),
        ("POST", "/functions", {"name": "intruder"}),
        ("GET", "/functions", None),
        ("GET", f"/functions/{function_id}", None),
        ("PATCH", f"/functions/{function_id}", {"memory": 1}),
        ("DELETE", f"/functions/{function_id}", None),
        ("GET", f"/functions/{function_id}/log", None),
        ("POST", f"/functions/{function_id}/bundle", None),
        ("POST", "/jobs", {"function_id": function_id, "args": [1]}),
        ("POST", "/jobs/bulk", {"function_id": function_id, "bulk_args": [[1]]}),
        ("POST", "/jobs/rerun", {"function_id": function_id}),
        ("GET", "/jobs", None),
        ("GET", f"/jobs/{job_id}", None),
        ("PATCH", f"/jobs/{job_id}", {"args": [2]}),
        ("DELETE", f"/jobs/{job_id}", None),
        ("GET", f"/jobs/{job_id}/result", None),
        ("GET", f"/jobs/{job_id}/log", None),
    ]


@pytest.fixture
def victim(api_server: ApiServer, make_user: Any) -> dict[str, Any]:
    """A user with a bundle uploaded but not posted, pending and failed jobs, a result."""
    owner: TestUser = make_user()
    function, url = create_with_upload(owner.api)
    assert put_bundle(url).status_code == 200
    jobs = submit(owner.api, function["id"], [[1], [2], [3]])
    set_job_status(api_server, [jobs[0]["id"]], JobStatus.FAILURE, runtime=1.0)
    store = api_server.app.extensions["blobstore"]
    store.put(f"jobs/{function['id']}/{jobs[1]['id']}/result", b"secret")
    store.put(f"build-logs/{function['id']}.log", b"secret build")
    return {"user": owner, "function": function, "jobs": jobs}


def token_for(api_server: ApiServer, name: str, **claims: Any) -> str:
    """A token with the given claims replaced, signed with the server's secret."""
    with api_server.app.app_context():
        good = issue_token(get_or_create_user(name))
        secret = api_server.app.config["SECRET_KEY"]
    payload = {**jwt.decode(good, options={"verify_signature": False}), **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, "HS256")


def bad_headers(api_server: ApiServer) -> dict[str, dict[str, str]]:
    with api_server.app.app_context():
        expired = issue_token(get_or_create_user("expiring"), ttl_seconds=-10)
    valid = api_server.token("forged")
    forged = jwt.encode(
        jwt.decode(valid, options={"verify_signature": False}),
        "not the server secret, but just as long as one",
        "HS256",
    )
    unsigned = jwt.encode(jwt.decode(valid, options={"verify_signature": False}), None, "none")
    return {
        "missing": {},
        "empty": {"Authorization": ""},
        "bare scheme": {"Authorization": "Bearer "},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "token without scheme": {"Authorization": valid},
        "garbage": {"Authorization": "Bearer not.a.token"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "wrong signature": {"Authorization": f"Bearer {forged}"},
        "alg none": {"Authorization": f"Bearer {unsigned}"},
        "no exp": {"Authorization": f"Bearer {token_for(api_server, 'no-exp', exp=None)}"},
        "other issuer": {"Authorization": f"Bearer {token_for(api_server, 'iss', iss='x')}"},
        "unknown user": {"Authorization": f"Bearer {token_for(api_server, 'u', sub='0' * 32)}"},
    }


def test_bad_tokens_are_401_on_every_endpoint(
    api_server: ApiServer, victim: dict[str, Any]
) -> None:
    anonymous = ApiClient(api_server, None)
    cases = bad_headers(api_server)
    before = db_snapshot(api_server)
    function_id, job_id = victim["function"]["id"], victim["jobs"][1]["id"]
    for name, headers in cases.items():
        for method, path, body in endpoints(function_id, job_id):
            response = anonymous.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (name, method, path, response.text)
            assert response.json()["detail"]
            assert response.headers.get("WWW-Authenticate") == "Bearer"
    assert db_snapshot(api_server) == before


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


def test_other_users_objects_are_404_everywhere(
    api_server: ApiServer, victim: dict[str, Any], api: ApiClient
) -> None:
    function_id, job_id = victim["function"]["id"], victim["jobs"][1]["id"]
    before = db_snapshot(api_server)
    shared = {"/credentials", "/functions", "/jobs"}
    for method, path, body in endpoints(function_id, job_id):
        if path in shared:
            continue
        response = api.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert "secret" not in response.text
    assert db_snapshot(api_server) == before
    owner = victim["user"].api
    assert owner.get(f"/jobs/{job_id}/result").content == b"secret"
    assert owner.get(f"/functions/{function_id}").json() == victim["function"]


def test_lists_hide_other_users_objects(victim: dict[str, Any], api: ApiClient) -> None:
    function_id = victim["function"]["id"]
    empty = {"data": [], "meta": {"page_cursor": None, "total": 0}}
    assert api.get("/functions").json() == empty
    assert api.get("/functions", params={"id": function_id}).json() == empty
    assert api.get("/jobs").json() == empty
    assert api.get("/jobs", params={"function_id": function_id}).json() == empty
    counted = api.get("/jobs", params={"function_id": function_id, "status": "failure"})
    assert counted.json()["meta"]["total"] == 0
    assert api.get("/jobs", params={"function_id": function_id, "limit": 0}).json() == empty


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
    assert admin.post(f"/functions/{function_id}/bundle").json()["status"] == "building"
    set_build(api_server, function_id, BuildState.BUILT)
    rerun = admin.post("/jobs/rerun", json={"function_id": function_id}).json()
    assert [job["id"] for job in rerun] == [victim["jobs"][0]["id"]]
    owner = victim["user"].api
    assert owner.get(f"/jobs/{victim['jobs'][0]['id']}").json()["status"] == "pending"
