"""The security matrix: every way one user might reach another's objects, and every bad token.

One table drives one test. Each attempt is made by an attacker (a user of their own, with
a function and a job) against a victim's function, jobs, results, logs and bundle upload,
or with a credential that must not authenticate anyone. Each must be refused (404 for
another user's object, exactly as for one that never existed; 401 for a bad credential)
or, for lists, answer without any of the victim's objects, and leave the whole stored
state unchanged: every table's rows and every blob file are hashed before and after.
"""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import pytest
import requests
import sqlalchemy as sa

from api.resources.uploads import _signature
from compute.server.extensions import db
from compute.server.ids import new_id
from compute.server.models import BuildState, User
from compute.server.tokens import ALGORITHM, get_or_create_user, issue_token
from compute.statuses import JobStatus
from tests.api.helpers import (
    bundle_bytes,
    create_with_upload,
    put_bundle,
    set_build,
    set_job_status,
    submit,
)
from tests.api.snapshots import snapshot
from tests.conftest import ApiClient, ApiServer

SECRET_NAME = "victim-secret-name"
SECRET_RESULT = b"victim-secret-result"
SECRET_LOG = b"victim-secret-log"
SECRET_BUILD_LOG = b"victim-secret-build-log"
SECRETS = (SECRET_NAME, SECRET_RESULT.decode(), SECRET_LOG.decode(), SECRET_BUILD_LOG.decode())
VICTIM_REFERENCE = "victim-reference"
VICTIM_IDEMPOTENCY_KEY = "victim-idempotency-key"
WRONG_KEY = "not the server's secret, though just as long as one might be"


@dataclass(frozen=True)
class Attempt:
    """One request and what it must get.

    `expect` is "404", "401", "400", "422", "empty" (a 200 list with no rows and a total
    of 0) or "own" (a 200 list holding none of the victim's objects). Strings may name
    the world's values as `{vfn}` (see `World.values`); `credential` names the
    Authorization header sent (`attacker`, `none`, or one of `bad_credentials`).
    """

    name: str
    method: str
    path: str
    expect: str
    json: Any = None
    params: dict[str, Any] | None = None
    credential: str = "attacker"
    headers: dict[str, str] | None = None
    data: bytes | None = None


def lists(title: str, path: str, expect: str, **params: Any) -> Attempt:
    return Attempt(title, "GET", path, expect, params=params)


def leaf(name: str, value: str, op: str = "eq") -> dict[str, Any]:
    return {"name": name, "op": op, "val": value}


def filtered(*terms: Any) -> str:
    return json.dumps(list(terms))


CROSS_USER = [
    # Another's function.
    Attempt("get function", "GET", "/functions/{vfn}", "404"),
    Attempt("get built function", "GET", "/functions/{vfn_built}", "404"),
    Attempt(
        "get function with statistics",
        "GET",
        "/functions/{vfn}",
        "404",
        params={"include": "job.statistics"},
    ),
    Attempt("patch function", "PATCH", "/functions/{vfn}", "404", json={"memory": 1}),
    Attempt("rename function", "PATCH", "/functions/{vfn}", "404", json={"name": "pwned"}),
    # Invalid as well as another's: still 404, so validation reveals nothing either.
    Attempt("patch function invalidly", "PATCH", "/functions/{vfn}", "404", json={"memory": 0}),
    Attempt("delete function", "DELETE", "/functions/{vfn}", "404"),
    Attempt("delete built function", "DELETE", "/functions/{vfn_built}", "404"),
    Attempt("read build log", "GET", "/functions/{vfn}/log", "404"),
    Attempt("post bundle", "POST", "/functions/{vfn}/bundle", "404"),
    Attempt("post bundle of built function", "POST", "/functions/{vfn_built}/bundle", "404"),
    # Another's jobs.
    Attempt("get job", "GET", "/jobs/{vjob}", "404"),
    Attempt("patch job args", "PATCH", "/jobs/{vjob}", "404", json={"args": [666]}),
    Attempt(
        "move job to own function", "PATCH", "/jobs/{vjob}", "404", json={"function_id": "{afn}"}
    ),
    Attempt("delete job", "DELETE", "/jobs/{vjob}", "404"),
    Attempt("delete failed job", "DELETE", "/jobs/{vjob_failed}", "404"),
    Attempt("read job result", "GET", "/jobs/{vjob}/result", "404"),
    Attempt("read job log", "GET", "/jobs/{vjob}/log", "404"),
    Attempt(
        "move own job to victim's function",
        "PATCH",
        "/jobs/{ajob}",
        "422",
        json={"function_id": "{vfn}"},
    ),
    # Work submitted to another's function.
    Attempt("rerun function", "POST", "/jobs/rerun", "404", json={"function_id": "{vfn}"}),
    Attempt(
        "rerun built function", "POST", "/jobs/rerun", "404", json={"function_id": "{vfn_built}"}
    ),
    Attempt("submit job", "POST", "/jobs", "404", json={"function_id": "{vfn}", "args": [1]}),
    Attempt(
        "submit job with victim's idempotency key",
        "POST",
        "/jobs",
        "404",
        json={"function_id": "{vfn}", "args": [1]},
        headers={"Idempotency-Key": VICTIM_IDEMPOTENCY_KEY},
    ),
    Attempt(
        "submit bulk",
        "POST",
        "/jobs/bulk",
        "404",
        json={"function_id": "{vfn}", "bulk_args": [[1]]},
    ),
    Attempt(
        "submit bulk to built function",
        "POST",
        "/jobs/bulk",
        "404",
        json={"function_id": "{vfn_built}", "bulk_args": [[1], [2]]},
    ),
    Attempt(
        "submit bulk with victim's reference",
        "POST",
        "/jobs/bulk",
        "404",
        json={"function_id": "{vfn}", "bulk_args": [[1]], "reference_id": VICTIM_REFERENCE},
    ),
    # Lists, searches and counts: the victim's objects are not there.
    lists("list functions", "/functions", "own"),
    lists("list functions with statistics", "/functions", "own", include="job.statistics"),
    lists("functions by id", "/functions", "empty", id="{vfn}"),
    lists("functions by name", "/functions", "empty", name=SECRET_NAME),
    lists("functions filtered by id", "/functions", "empty", filter=filtered(leaf("id", "{vfn}"))),
    lists(
        "functions filtered by name prefix",
        "/functions",
        "empty",
        filter=filtered(leaf("name", "victim-", "prefix")),
    ),
    lists(
        "functions matching anything",
        "/functions",
        "own",
        filter=filtered(leaf("name", "%", "ilike")),
        sort="-creation_date",
    ),
    lists("count functions by id", "/functions", "empty", id="{vfn}", limit=0),
    lists("list jobs", "/jobs", "own"),
    lists("jobs by function_id", "/jobs", "empty", function_id="{vfn}"),
    lists(
        "jobs by function_id and status", "/jobs", "empty", function_id="{vfn}", status="failure"
    ),
    lists("count jobs by function_id", "/jobs", "empty", function_id="{vfn}", limit=0),
    lists(
        "jobs filtered by function_id",
        "/jobs",
        "empty",
        filter=filtered(leaf("function_id", "{vfn}")),
    ),
    lists(
        "jobs filtered by function_id and statuses",
        "/jobs",
        "empty",
        filter=filtered(
            leaf("function_id", "{vfn}"),
            {"or": [leaf("status", "failure"), leaf("status", "pending")]},
        ),
    ),
    lists("jobs filtered by id", "/jobs", "empty", filter=filtered(leaf("id", "{vjob}"))),
    lists(
        "jobs of either function",
        "/jobs",
        "own",
        filter=filtered({"or": [leaf("function_id", "{vfn}"), leaf("function_id", "{afn}")]}),
    ),
    lists("jobs of the built function", "/jobs", "empty", function_id="{vfn_built}"),
    # The victim's own page cursors, replayed: signed for the victim alone.
    lists(
        "replay victim's functions cursor", "/functions", "400", page_cursor="{vcursor_functions}"
    ),
    lists("replay victim's jobs cursor", "/jobs", "400", page_cursor="{vcursor_jobs}"),
    # Bundle uploads: the URL is the credential, for one function, until it expires.
    Attempt(
        "upload with own URL, path edited to victim's function",
        "PUT",
        "{upload_path_edited}",
        "404",
        credential="none",
        data=bundle_bytes("def main():\n    return 'pwned'\n"),
    ),
    Attempt(
        "upload with own URL, path edited to victim's built function",
        "PUT",
        "{upload_path_edited_built}",
        "404",
        credential="none",
        data=bundle_bytes("def main():\n    return 'pwned'\n"),
    ),
    Attempt(
        "upload with a correctly signed but expired URL",
        "PUT",
        "{upload_expired}",
        "404",
        credential="none",
        data=bundle_bytes(),
    ),
    Attempt(
        "upload with victim's URL, signature tampered",
        "PUT",
        "{upload_tampered}",
        "404",
        credential="none",
        data=bundle_bytes(),
    ),
    Attempt(
        "upload with victim's URL, expiry extended",
        "PUT",
        "{upload_extended}",
        "404",
        credential="none",
        data=bundle_bytes(),
    ),
    Attempt(
        "upload with victim's URL, signature removed",
        "PUT",
        "{upload_unsigned}",
        "404",
        credential="none",
        data=bundle_bytes(),
    ),
    Attempt(
        "upload signed with the wrong key",
        "PUT",
        "{upload_wrong_key}",
        "404",
        credential="none",
        data=bundle_bytes(),
    ),
    Attempt(
        "upload with victim's URL and attacker's token",
        "PUT",
        "{upload_tampered}",
        "404",
        data=bundle_bytes(),
    ),
]


def endpoints() -> list[tuple[str, str, Any]]:
    """Every authenticated endpoint, as (method, path, JSON body), aimed at the victim."""
    return [
        ("POST", "/credentials", {"client_id": None, "client_secret": None}),
        ("POST", "/functions", {"name": "intruder"}),
        ("GET", "/functions", None),
        ("GET", "/functions/{vfn}", None),
        ("PATCH", "/functions/{vfn}", {"memory": 1}),
        ("DELETE", "/functions/{vfn}", None),
        ("GET", "/functions/{vfn}/log", None),
        ("POST", "/functions/{vfn}/bundle", None),
        ("POST", "/jobs", {"function_id": "{vfn}", "args": [1]}),
        ("POST", "/jobs/bulk", {"function_id": "{vfn}", "bulk_args": [[1]]}),
        ("POST", "/jobs/rerun", {"function_id": "{vfn}"}),
        ("GET", "/jobs", None),
        ("GET", "/jobs/{vjob}", None),
        ("PATCH", "/jobs/{vjob}", {"args": [2]}),
        ("DELETE", "/jobs/{vjob}", None),
        ("GET", "/jobs/{vjob}/result", None),
        ("GET", "/jobs/{vjob}/log", None),
    ]


# Authorization headers that authenticate no one; built per server in `bad_credentials`.
BAD_CREDENTIALS = [
    "missing",
    "empty",
    "scheme only",
    "scheme and blanks",
    "basic scheme",
    "token scheme with victim's token",
    "victim's token without scheme",
    "two tokens",
    "not a jwt",
    "two-part token",
    "forged with wrong key as victim",
    "alg none as victim",
    "signature stripped",
    "victim's payload under attacker's signature",
    "expired victim's token",
    "server key but HS512",
    "other issuer",
    "no exp",
    "no sub",
    "sub not a string",
    "unknown user",
    "deleted user",
]

AUTH = [
    Attempt(
        f"{credential}: {method} {path}",
        method,
        path,
        "401",
        json=body,
        credential=credential,
    )
    for credential in BAD_CREDENTIALS
    for method, path, body in endpoints()
]

TABLE = CROSS_USER + AUTH


@dataclass
class World:
    """The victim's and attacker's objects and credentials on one API server."""

    server: ApiServer
    victim: ApiClient
    values: dict[str, str]
    headers: dict[str, dict[str, str]]
    victim_ids: set[str]
    attacker_ids: set[str]


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _signed(claims: dict[str, Any], key: str | None, algorithm: str = ALGORITHM) -> str:
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm)


def bad_credentials(server: ApiServer, victim: str, attacker: str) -> dict[str, str | None]:
    """The Authorization header of each entry of `BAD_CREDENTIALS` (None: no header)."""
    key = server.app.config["SECRET_KEY"]
    claims = _claims(victim)
    header, payload, _ = victim.split(".")
    attacker_header, _, attacker_signature = attacker.split(".")
    with server.app.app_context():
        doomed = get_or_create_user(f"doomed-{new_id()}")
        deleted = issue_token(doomed)
        db.session.execute(sa.delete(User).where(User.id == doomed.id))
        db.session.commit()
    past = int(time.time()) - 60
    raw: dict[str, str | None] = {
        "missing": None,
        "empty": "",
        "scheme only": "Bearer",
        "scheme and blanks": "Bearer    ",
        "basic scheme": "Basic dmljdGltOnBhc3N3b3Jk",
        "token scheme with victim's token": f"Token {victim}",
        "victim's token without scheme": victim,
        "two tokens": f"Bearer {attacker} {victim}",
        "not a jwt": "Bearer not-a-token",
        "two-part token": f"Bearer {header}.{payload}",
    }
    tokens = {
        "forged with wrong key as victim": _signed(claims, WRONG_KEY),
        "alg none as victim": _signed(claims, None, "none"),
        "signature stripped": f"{header}.{payload}.",
        "victim's payload under attacker's signature": (
            f"{attacker_header}.{payload}.{attacker_signature}"
        ),
        "expired victim's token": _signed({**claims, "iat": past - 60, "exp": past}, key),
        "server key but HS512": _signed(claims, key, "HS512"),
        "other issuer": _signed({**claims, "iss": "elsewhere"}, key),
        "no exp": _signed({**claims, "exp": None}, key),
        "no sub": _signed({**claims, "sub": None}, key),
        "sub not a string": _signed({**claims, "sub": 12345}, key),
        "unknown user": _signed({**claims, "sub": new_id()}, key),
        "deleted user": deleted,
    }
    headers = {**raw, **{name: f"Bearer {token}" for name, token in tokens.items()}}
    assert set(headers) == set(BAD_CREDENTIALS)
    return headers


def _upload_url(url: str, **changes: str | None) -> str:
    """`url` with its query parameters changed (None removes one) or its path replaced."""
    parsed = urlparse(url)
    query = {name: values[0] for name, values in parse_qs(parsed.query).items()}
    path = changes.pop("path", None) or parsed.path
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return parsed._replace(path=path, query=urlencode(query)).geturl()


def _upload_path(function_id: str) -> str:
    return f"/compute/v1/functions/{function_id}/bundle_upload"


def _cursor(api: ApiClient, path: str) -> str:
    cursor = api.get(path, params={"page_size": 1}).json()["meta"]["page_cursor"]
    assert cursor, f"the victim has more than one page of {path}"
    return cursor


def upload_urls(
    server: ApiServer, victim_url: str, attacker_url: str, ids: dict[str, str]
) -> dict[str, str]:
    """Bundle upload URLs for the victim's functions that must all be refused."""
    expires = int(parse_qs(urlparse(victim_url).query)["expires"][0])
    signature = parse_qs(urlparse(victim_url).query)["signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    past = int(time.time()) - 5
    with server.app.test_request_context():
        expired_signature = _signature(ids["vfn"], past)
        server.app.config["SECRET_KEY"], real = WRONG_KEY, server.app.config["SECRET_KEY"]
        try:
            wrong_key_signature = _signature(ids["vfn"], expires)
        finally:
            server.app.config["SECRET_KEY"] = real
    return {
        "upload_path_edited": _upload_url(attacker_url, path=_upload_path(ids["vfn"])),
        "upload_path_edited_built": _upload_url(attacker_url, path=_upload_path(ids["vfn_built"])),
        "upload_expired": _upload_url(victim_url, expires=str(past), signature=expired_signature),
        "upload_tampered": _upload_url(victim_url, signature=flipped),
        "upload_extended": _upload_url(victim_url, expires=str(expires + 86400)),
        "upload_unsigned": _upload_url(victim_url, signature=None),
        "upload_wrong_key": _upload_url(victim_url, signature=wrong_key_signature),
    }


@pytest.fixture(scope="module")
def world(api_server: ApiServer) -> World:
    """A victim with two functions, jobs in several states, results and logs; an attacker."""
    victim_token = api_server.token(f"victim-{new_id()}")
    attacker_token = api_server.token(f"attacker-{new_id()}")
    victim = ApiClient(api_server, victim_token)
    attacker = ApiClient(api_server, attacker_token)

    function, victim_url = create_with_upload(victim, name=SECRET_NAME)
    assert put_bundle(victim_url).status_code == 200
    jobs = submit(victim, function["id"], [[1], [2], [3]], reference_id=VICTIM_REFERENCE)
    keyed = victim.post(
        "/jobs",
        json={"function_id": function["id"], "args": [4]},
        headers={"Idempotency-Key": VICTIM_IDEMPOTENCY_KEY},
    )
    assert keyed.status_code == 201, keyed.text
    set_job_status(api_server, [jobs[0]["id"]], JobStatus.FAILURE, runtime=1.0)
    built, _ = create_with_upload(victim, name="victim-built")
    set_build(api_server, built["id"], BuildState.BUILT)
    built_jobs = submit(victim, built["id"], [[5], [6]])
    set_job_status(api_server, [built_jobs[0]["id"]], JobStatus.SUCCESS, runtime=1.0)
    set_job_status(api_server, [built_jobs[1]["id"]], JobStatus.TIMEOUT, runtime=1.0)

    store = api_server.app.extensions["blobstore"]
    store.put(f"jobs/{function['id']}/{jobs[1]['id']}/result", SECRET_RESULT)
    store.put(f"jobs/{function['id']}/{jobs[1]['id']}/log.ndjson", SECRET_LOG)
    store.put(f"build-logs/{function['id']}.log", SECRET_BUILD_LOG)

    own, attacker_url = create_with_upload(attacker, name="attacker-own")
    (own_job,) = submit(attacker, own["id"], [[0]])

    ids = {
        "vfn": function["id"],
        "vfn_built": built["id"],
        "vjob": jobs[1]["id"],
        "vjob_failed": jobs[0]["id"],
        "afn": own["id"],
        "ajob": own_job["id"],
    }
    values = {
        **ids,
        "vcursor_functions": _cursor(victim, "/functions"),
        "vcursor_jobs": _cursor(victim, "/jobs"),
        **upload_urls(api_server, victim_url, attacker_url, ids),
    }
    headers = {
        "attacker": {"Authorization": f"Bearer {attacker_token}"},
        "none": {},
    }
    for name, value in bad_credentials(api_server, victim_token, attacker_token).items():
        headers[name] = {} if value is None else {"Authorization": value}
    victim_ids = {function["id"], built["id"], keyed.json()["id"]}
    victim_ids |= {job["id"] for job in jobs + built_jobs}
    attacker_ids = {own["id"], own_job["id"]}
    return World(api_server, victim, values, headers, victim_ids, attacker_ids)


def fill(value: Any, values: dict[str, str]) -> Any:
    """`value` with every `{name}` placeholder replaced from `values`."""
    if isinstance(value, str):
        for name, replacement in values.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, list):
        return [fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, values) for key, item in value.items()}
    return value


def send(world: World, attempt: Attempt, values: dict[str, str]) -> requests.Response:
    path = fill(attempt.path, values)
    url = path if path.startswith("http") else world.server.base_url + path
    headers = {**world.headers[attempt.credential], **(attempt.headers or {})}
    return requests.request(
        attempt.method,
        url,
        headers=headers,
        json=fill(attempt.json, values),
        params=fill(attempt.params, values),
        data=attempt.data,
        timeout=30,
    )


def as_if_unknown(world: World, attempt: Attempt) -> tuple[requests.Response, dict[str, str]]:
    """The same attempt with the victim's ids replaced by ids no object has ever had."""
    victims = ("vfn", "vfn_built", "vjob", "vjob_failed")
    fresh = {name: new_id() for name in victims}
    values = {**world.values, **fresh}
    for name in [name for name in values if name.startswith("upload_")]:
        for victim in victims:
            values[name] = values[name].replace(world.values[victim], fresh[victim])
    return send(world, attempt, values), fresh


def check(world: World, attempt: Attempt, response: requests.Response) -> None:
    text = response.text
    assert not any(secret in text for secret in SECRETS), text[:500]
    if attempt.expect in {"empty", "own"}:
        assert response.status_code == 200, text[:500]
        body = response.json()
        listed = {row["id"] for row in body["data"]}
        assert not listed & world.victim_ids, body
        assert not any(victim_id in text for victim_id in world.victim_ids), body
        if attempt.expect == "empty":
            assert body == {"data": [], "meta": {"page_cursor": None, "total": 0}}
        else:
            assert listed <= world.attacker_ids and listed, body
        return
    assert response.status_code == int(attempt.expect), text[:500]
    body = response.json()
    assert body["detail"] and isinstance(body["errors"], dict)
    if attempt.expect == "401":
        assert response.headers.get("WWW-Authenticate") == "Bearer"
    if attempt.expect == "404":
        # Another's object is indistinguishable from one that does not exist.
        unknown, fresh = as_if_unknown(world, attempt)
        expected = unknown.text
        for name, fresh_id in fresh.items():
            expected = expected.replace(fresh_id, world.values[name])
        assert (response.status_code, text) == (unknown.status_code, expected)


@pytest.mark.parametrize("attempt", TABLE, ids=lambda attempt: attempt.name)
def test_attempt_is_refused_and_changes_nothing(world: World, attempt: Attempt) -> None:
    before = snapshot(world.server)
    response = send(world, attempt, world.values)
    after = snapshot(world.server)
    check(world, attempt, response)
    assert before.differences(after) == []


def test_the_table_covers_the_matrix() -> None:
    assert len(CROSS_USER) >= 25
    assert len({attempt.name for attempt in TABLE}) == len(TABLE)
    assert {attempt.expect for attempt in CROSS_USER} >= {"404", "empty", "own", "400", "422"}
    assert all(attempt.expect == "401" for attempt in AUTH)
    authenticated = {(method, path) for method, path, _ in endpoints()}
    assert len(authenticated) == 17 and len(AUTH) == len(BAD_CREDENTIALS) * 17


def test_the_victim_still_has_everything(world: World) -> None:
    """After the table, the victim still reads what the attempts aimed at."""
    victim, values = world.victim, world.values
    assert victim.get(f"/functions/{values['vfn']}").json()["name"] == SECRET_NAME
    assert victim.get(f"/jobs/{values['vjob']}/result").content == SECRET_RESULT
    assert victim.get(f"/jobs/{values['vjob']}/log").content == SECRET_LOG
    assert gzip.decompress(victim.get(f"/functions/{values['vfn']}/log").content) == (
        SECRET_BUILD_LOG
    )
    listed = victim.get("/jobs", params={"limit": 0}).json()["meta"]["total"]
    assert listed == len(world.victim_ids) - 2
