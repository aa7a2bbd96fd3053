"""Hostile JSON is a 4xx naming the field, never a 5xx, and never a job that cannot end.

Each attack (nesting past the depth cap, lone surrogates, NUL characters, non-finite
numbers, integers no column can hold) is refused with a 4xx whose message names the
field, stores nothing, and leaves the function's jobs listable and deletable. Rows that
an older version stored with such values (written here straight to the database) are
still read, listed and deleted by their owner and by an admin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from api import API_PREFIX
from compute.server.extensions import db
from compute.server.models import Function
from compute.server.transitions import insert_jobs
from compute.statuses import JobStatus
from tests.api.helpers import submit
from tests.api.snapshots import snapshot
from tests.conftest import ApiClient, ApiServer, create_function

if TYPE_CHECKING:
    from tests.conftest import TestUser

DEPTH_CAP = 64  # api.json_input.MAX_JSON_DEPTH
JSON = {"Content-Type": "application/json"}


def deep_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int) -> str:
    return '{"k":' * depth + "1" + "}" * depth


def job_body(field: str, value: str) -> str:
    """A POST /jobs body with `field` set to the raw JSON text `value`."""
    return f'{{"function_id": "{{function}}", "{field}": {value}}}'


def bulk_body(field: str, value: str) -> str:
    return f'{{"function_id": "{{function}}", "bulk_args": [[1]], "{field}": {value}}}'


@dataclass(frozen=True)
class Attack:
    name: str
    method: str
    path: str
    status: int
    field: str
    body: str | bytes | None = None  # raw JSON text; `{function}`, `{job}` filled in
    params: dict[str, str] | None = None
    words: tuple[str, ...] = ()  # more words the detail must hold, e.g. the limit


def post(name: str, path: str, body: str | bytes, status: int, field: str, *words: str) -> Attack:
    return Attack(name, "POST", path, status, field, body=body, words=words)


def query(name: str, params: dict[str, str], field: str = "filter") -> Attack:
    return Attack(name, "GET", "/jobs", 400, field, params=params)


def leaf(name: str, value: str) -> str:
    return f'[{{"name": "{name}", "op": "eq", "val": {value}}}]'


CAP = str(DEPTH_CAP)
ATTACKS = [
    # Nesting past the cap: the request cannot be read (400), naming the field and limit.
    post("args 950 deep", "/jobs", job_body("args", deep_list(950)), 400, "args", CAP),
    post("args one level too deep", "/jobs", job_body("args", deep_list(64)), 400, "args", CAP),
    post("kwargs 100,000 deep", "/jobs", job_body("kwargs", deep_object(100_000)), 400, "kwargs"),
    post(
        "bulk_args 950 deep",
        "/jobs/bulk",
        '{"function_id": "{function}", "bulk_args": [' + deep_list(950) + "]}",
        400,
        "bulk_args",
        CAP,
    ),
    post(
        "bulk_kwargs 950 deep",
        "/jobs/bulk",
        bulk_body("bulk_kwargs", deep_list(950)),
        400,
        "bulk_kwargs",
    ),
    post("function name 950 deep", "/functions", '{"name": ' + deep_list(950) + "}", 400, "name"),
    Attack(
        "patch args 950 deep",
        "PATCH",
        "/jobs/{job}",
        400,
        "args",
        body='{"args": ' + deep_list(950) + "}",
        words=(CAP,),
    ),
    query("filter 5,000 deep", {"filter": deep_list(5_000)}),
    query("filter 950 deep", {"filter": "[" + '{"or": [' * 950 + "]}" * 950 + "]"}),
    # Lone surrogates: JSON text may spell them, no database can store them.
    post("function name lone surrogate", "/functions", '{"name": "fn \\ud800"}', 422, "name"),
    post("name surrogate as utf-8 bytes", "/functions", b'{"name": "\xed\xa0\x80"}', 422, "name"),
    post("args lone surrogate", "/jobs", job_body("args", '["\\udfff"]'), 422, "args"),
    post("kwargs key lone surrogate", "/jobs", job_body("kwargs", '{"\\ud800": 1}'), 422, "kwargs"),
    post("function_id lone surrogate", "/jobs", '{"function_id": "\\ud800"}', 422, "function_id"),
    post(
        "bulk_kwargs lone surrogate",
        "/jobs/bulk",
        bulk_body("bulk_kwargs", '[{"a": "\\ud800"}]'),
        422,
        "bulk_kwargs",
    ),
    post(
        "reference_id lone surrogate",
        "/jobs/bulk",
        bulk_body("reference_id", '"r\\ud800"'),
        422,
        "reference_id",
    ),
    Attack(
        "patch kwargs lone surrogate",
        "PATCH",
        "/jobs/{job}",
        422,
        "kwargs",
        body='{"kwargs": {"a": "\\ud800"}}',
    ),
    post(
        "credentials lone surrogate", "/credentials", '{"client_id": "\\ud800"}', 422, "client_id"
    ),
    query("filter value lone surrogate", {"filter": leaf("function_id", '"\\ud800"')}),
    # NUL characters: PostgreSQL cannot store them in text or json.
    post("args nul", "/jobs", job_body("args", '["a\\u0000b"]'), 422, "args"),
    post("kwargs key nul", "/jobs", job_body("kwargs", '{"a\\u0000": 1}'), 422, "kwargs"),
    post(
        "bulk_args nul",
        "/jobs/bulk",
        '{"function_id": "{function}", "bulk_args": [["\\u0000"]]}',
        422,
        "bulk_args",
    ),
    # Non-finite numbers: NaN and Infinity are not JSON (400); 1e400 is JSON no double holds.
    post("args 1e400", "/jobs", job_body("args", "[1e400]"), 422, "args"),
    post(
        "bulk_args -1e400",
        "/jobs/bulk",
        '{"function_id": "{function}", "bulk_args": [-1e400]}',
        422,
        "bulk_args",
    ),
    post("kwargs NaN", "/jobs", job_body("kwargs", '{"x": NaN}'), 400, "kwargs"),
    post(
        "bulk_kwargs Infinity",
        "/jobs/bulk",
        bulk_body("bulk_kwargs", '[{"x": Infinity}]'),
        400,
        "bulk_kwargs",
    ),
    post("memory -Infinity", "/functions", '{"memory": -Infinity}', 400, "memory"),
    Attack("patch args Infinity", "PATCH", "/jobs/{job}", 400, "args", body='{"args": [Infinity]}'),
    post(
        "args integer of 5,000 digits",
        "/jobs",
        job_body("args", "[1" + "0" * 5000 + "]"),
        400,
        "body",
    ),
    query("filter value 1e400", {"filter": leaf("runtime", "1e400")}),
    query("filter datetime 1e400", {"filter": leaf("creation_date", "1e400")}),
    query("filter datetime NaN", {"filter": leaf("creation_date", "NaN")}),
    query("filter datetime 1e30", {"filter": leaf("creation_date", "1e30")}),
    query(
        "filter datetime past year 1", {"filter": leaf("creation_date", '"0001-01-01T00:00+01:00"')}
    ),
    # Integers outside signed 64 bits compared against integer columns.
    query("filter integer 10**30", {"filter": leaf("attempt", str(10**30))}),
    query("filter integer below int64", {"filter": leaf("attempt", str(-(2**63) - 1))}),
    query("plain parameter 1e30", {"attempt": "1e30"}),
    query("plain parameter 10**30", {"attempt": str(10**30)}),
    query("limit 1e400", {"limit": "1e400"}, field="limit"),
]


@pytest.fixture
def target(api: ApiClient) -> dict[str, str]:
    """A function of the caller with one pending job."""
    function = create_function(api)
    (job,) = submit(api, function["id"], [[1]])
    return {"function": function["id"], "job": job["id"]}


def fill(text: str | bytes, target: dict[str, str]) -> str | bytes:
    if isinstance(text, bytes):
        return text
    for name, value in target.items():
        text = text.replace("{" + name + "}", value)
    return text


def assert_jobs_still_work(api: ApiClient, function_id: str, job_id: str) -> None:
    """The function's job list answers, and its job can still be read and deleted."""
    for params in ({"function_id": function_id}, {}):
        response = api.get("/jobs", params=params)
        assert response.status_code == 200, response.text[:500]
        assert job_id in [job["id"] for job in response.json()["data"]]
    assert api.get(f"/jobs/{job_id}").status_code == 200
    assert api.delete(f"/jobs/{job_id}").status_code == 204
    assert api.get(f"/jobs/{job_id}").status_code == 404
    assert api.get("/jobs", params={"function_id": function_id}).json()["data"] == []


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda attack: attack.name)
def test_hostile_input_is_refused_without_change(
    api_server: ApiServer, api: ApiClient, target: dict[str, str], attack: Attack
) -> None:
    before = snapshot(api_server)
    data = None if attack.body is None else fill(attack.body, target)
    response = api.request(
        attack.method,
        str(fill(attack.path, target)),
        data=data.encode() if isinstance(data, str) else data,
        params=attack.params,
        headers=JSON if data is not None else None,
    )
    assert response.status_code == attack.status, response.text[:500]
    body = response.json()
    assert attack.field in body["errors"], body
    assert attack.field in body["detail"], body
    for word in attack.words:
        assert word in body["detail"], body
    assert before.differences(snapshot(api_server)) == []
    assert_jobs_still_work(api, target["function"], target["job"])


def test_attacks_are_many_and_distinct() -> None:
    assert len({attack.name for attack in ATTACKS}) == len(ATTACKS) >= 30
    assert all(400 <= attack.status < 500 for attack in ATTACKS)


def nested(depth: int) -> Any:
    """A list `depth` levels deep, built without recursion."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_args_at_the_depth_cap_are_accepted(api: ApiClient) -> None:
    function = create_function(api)
    # The body object is one level: args may use the other DEPTH_CAP - 1.
    args = nested(DEPTH_CAP - 1)
    response = api.post("/jobs", json={"function_id": function["id"], "args": args})
    assert response.status_code == 201, response.text[:500]
    assert api.get(f"/jobs/{response.json()['id']}").json()["args"] == args


def test_big_integers_in_args_are_stored_as_sent(api: ApiClient) -> None:
    """Arguments are JSON text end to end: integers past 64 bits need no column."""
    function = create_function(api)
    args = [10**30, -(2**63) - 1, 2**64]
    response = api.post("/jobs", json={"function_id": function["id"], "args": args})
    assert response.status_code == 201, response.text[:500]
    assert api.get(f"/jobs/{response.json()['id']}").json()["args"] == args


def test_idempotency_key_with_a_lone_surrogate_is_refused(
    api_server: ApiServer, user: TestUser, target: dict[str, str]
) -> None:
    # HTTP clients cannot send one (headers travel as latin-1); a WSGI server could.
    before = snapshot(api_server)
    response = api_server.app.test_client().post(
        f"{API_PREFIX}/jobs",
        json={"function_id": target["function"]},
        headers={"Authorization": f"Bearer {user.token}", "Idempotency-Key": "k\ud800"},
    )
    assert response.status_code == 400, response.text[:500]
    assert "Idempotency-Key" in response.json["errors"]
    assert before.differences(snapshot(api_server)) == []
    assert_jobs_still_work(user.api, target["function"], target["job"])


# --- rows an older version stored with hostile arguments ---

STORED = {
    "args 950 deep": ("args", deep_list(950)),
    "kwargs 950 deep": ("kwargs", deep_object(950)),
    "args not json": ("args", "[1,"),
}


def store_job(
    api_server: ApiServer, function_id: str, owner_id: str, column: str, text: str
) -> str:
    """Submit a pending job, then make its `column` hold the raw JSON `text`, as a row
    stored before the input rules existed would."""
    value = "CAST(:value AS json)" if api_server.database == "postgresql" else ":value"
    with api_server.app.app_context():
        function = db.session.get(Function, function_id)
        assert function is not None and function.owner_id == owner_id
        (job,) = insert_jobs(db.session, function, [([], {})])
        db.session.execute(
            sa.text(f"UPDATE jobs SET {column} = {value} WHERE id = :id"),
            {"id": job.id, "value": text},
        )
        db.session.commit()
    return job.id


@pytest.mark.parametrize("stored", sorted(STORED))
def test_stored_hostile_arguments_stay_listable_and_deletable(
    api_server: ApiServer, make_user: Callable[..., TestUser], stored: str
) -> None:
    column, text = STORED[stored]
    owner, admin = make_user(), make_user(admin=True)
    function = create_function(owner.api)
    with api_server.app.app_context():
        owner_id = db.session.scalar(
            sa.text("SELECT owner_id FROM functions WHERE id = :id"), {"id": function["id"]}
        )
    if text == "[1," and api_server.database == "postgresql":
        # PostgreSQL's json column refuses text that is not JSON: no such row can exist.
        with pytest.raises(sa.exc.DataError, match="invalid input syntax for type json"):
            store_job(api_server, function["id"], owner_id, column, text)
        return
    ids = [store_job(api_server, function["id"], owner_id, column, text) for _ in range(2)]
    # Newest first: an admin's unfiltered list holds every user's jobs of the session.
    for client in (owner.api, admin.api):
        for params in ({"function_id": function["id"]}, {"sort": "-creation_date"}):
            response = client.get("/jobs", params=params)
            assert response.status_code == 200, response.text[:500]
            assert set(ids) <= {job["id"] for job in response.json()["data"]}
        for job_id in ids:
            response = client.get(f"/jobs/{job_id}")
            assert response.status_code == 200, response.text[:500]
            assert response.json()[column] is None  # unreadable: shown as absent
    assert owner.api.delete(f"/jobs/{ids[0]}").status_code == 204
    assert admin.api.delete(f"/jobs/{ids[1]}").status_code == 204
    assert owner.api.get("/jobs", params={"function_id": function["id"]}).json()["data"] == []
    statistics = owner.api.get(
        f"/functions/{function['id']}", params={"include": "job.statistics"}
    ).json()["job_statistics"]
    assert statistics[JobStatus.PENDING] == 0
