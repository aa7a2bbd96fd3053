"""Keyed submissions over HTTP: a repeat of the same request creates nothing.

`POST /jobs/bulk` takes a `reference_id`, `POST /jobs` an `Idempotency-Key` header. A
repeat answers 200 with the first request's jobs as they are now; the same key with a
different request is a 409 naming it; every key is the caller's own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
import requests
import sqlalchemy as sa

from compute.server.extensions import db
from compute.server.models import BuildState, Submission
from compute.statuses import JobStatus
from tests.api.helpers import building_function, set_build, set_job_status
from tests.conftest import ApiClient, ApiServer, create_function

if TYPE_CHECKING:
    from tests.conftest import TestUser

THREADS = 8
ROUNDS = 3
KEY = "Idempotency-Key"


def bulk(
    api: ApiClient, function_id: str, bulk_args: list[Any], reference_id: Any, **body: Any
) -> requests.Response:
    payload = {"function_id": function_id, "bulk_args": bulk_args, **body}
    if reference_id is not None:
        payload["reference_id"] = reference_id
    return api.post("/jobs/bulk", json=payload)


def one_job(api: ApiClient, body: dict[str, Any], key: str | None) -> requests.Response:
    return api.post("/jobs", json=body, headers={KEY: key} if key is not None else None)


def ids(response: requests.Response) -> list[str]:
    return [job["id"] for job in response.json()]


def counts(api: ApiClient, function_id: str) -> tuple[int, dict[str, int]]:
    """The function's jobs as the client sees them: `meta.total` and `job_statistics`."""
    total = api.get("/jobs", params={"function_id": function_id, "limit": 0}).json()
    function = api.get(f"/functions/{function_id}", params={"include": "job.statistics"})
    return total["meta"]["total"], function.json()["job_statistics"]


def stored(api_server: ApiServer, function_id: str) -> tuple[int, int]:
    """Rows in the database itself: the function's jobs and its submissions."""
    with api_server.app.app_context():
        jobs = db.session.scalar(
            sa.text("SELECT count(*) FROM jobs WHERE function_id = :f"), {"f": function_id}
        )
        submissions = db.session.scalar(
            sa.select(sa.func.count()).where(Submission.function_id == function_id)
        )
        db.session.rollback()
    return jobs, submissions


def at_once(call: Callable[[], requests.Response]) -> list[requests.Response]:
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda _: call(), range(THREADS)))


# --- POST /jobs/bulk with a reference_id ---


def test_a_repeat_returns_the_same_jobs_as_they_are_now(
    api_server: ApiServer, api: ApiClient
) -> None:
    function = create_function(api)
    reference = str(uuid.uuid4())
    first = bulk(api, function["id"], [[1], [2], [3]], reference, bulk_kwargs=[{}, {"k": 1}, {}])
    assert first.status_code == 201, first.text
    set_job_status(api_server, ids(first)[1:2], JobStatus.SUCCESS, runtime=2.0)
    before = counts(api, function["id"])

    again = bulk(api, function["id"], [[1], [2], [3]], reference, bulk_kwargs=[{}, {"k": 1}, {}])

    assert again.status_code == 200, again.text
    assert ids(again) == ids(first)
    assert [job["status"] for job in again.json()] == ["pending", "success", "pending"]
    assert again.json()[1]["runtime"] == 2.0
    assert [job["kwargs"] for job in again.json()] == [{}, {"k": 1}, {}]
    assert counts(api, function["id"]) == before == (3, {**before[1], "pending": 2})
    assert stored(api_server, function["id"]) == (3, 1)


def test_equivalent_bodies_are_the_same_request(api: ApiClient) -> None:
    # A bare argument is wrapped as a one-element list, and keyword order is no difference.
    function = create_function(api)
    first = bulk(api, function["id"], [5, [6]], "same", bulk_kwargs=[{"a": 1, "b": 2}, {}])
    again = bulk(api, function["id"], [[5], [6]], "same", bulk_kwargs=[{"b": 2, "a": 1}, {}])
    assert (first.status_code, again.status_code) == (201, 200)
    assert ids(again) == ids(first)


@pytest.mark.parametrize(
    "change",
    [
        {"bulk_args": [[1], [3]]},
        {"bulk_args": [[1]], "bulk_kwargs": [{}]},
        {"bulk_kwargs": [{"k": 1}, {}]},
        {"bulk_kwargs": None},
        {"function_id": "other"},
    ],
    ids=["args", "fewer jobs", "kwargs", "kwargs null", "other function"],
)
def test_the_same_reference_with_another_body_is_409(
    api_server: ApiServer, api: ApiClient, change: dict[str, Any]
) -> None:
    function, other = create_function(api), create_function(api)
    body = {"function_id": function["id"], "bulk_args": [[1], [2]], "bulk_kwargs": [{}, {}]}
    first = api.post("/jobs/bulk", json={**body, "reference_id": "ref"})
    assert first.status_code == 201
    if change.get("function_id") == "other":
        change = {"function_id": other["id"]}

    response = api.post("/jobs/bulk", json={**body, **change, "reference_id": "ref"})

    assert response.status_code == 409, response.text
    assert "reference_id" in response.json()["errors"]
    assert stored(api_server, function["id"]) == (2, 1)
    assert stored(api_server, other["id"]) == (0, 0)
    assert counts(api, other["id"])[0] == 0
    assert ids(api.post("/jobs/bulk", json={**body, "reference_id": "ref"})) == ids(first)


def test_concurrent_repeats_create_one_set_of_jobs(api_server: ApiServer, api: ApiClient) -> None:
    function = create_function(api)
    for round_ in range(ROUNDS):
        reference = f"round-{round_}"
        answers = at_once(
            lambda reference=reference: bulk(
                api, function["id"], [[index] for index in range(50)], reference
            )
        )
        assert sorted(answer.status_code for answer in answers) == [200] * (THREADS - 1) + [201]
        assert len({tuple(ids(answer)) for answer in answers}) == 1
    total, statistics = counts(api, function["id"])
    assert total == statistics["pending"] == ROUNDS * 50
    assert stored(api_server, function["id"]) == (ROUNDS * 50, ROUNDS)


def test_concurrent_uses_of_a_reference_for_two_functions(
    api_server: ApiServer, api: ApiClient
) -> None:
    # The functions' locks do not serialise these: the unique key decides the winner.
    functions = [create_function(api) for _ in range(2)]
    for round_ in range(ROUNDS):
        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(
                pool.map(
                    lambda index, round_=round_: bulk(
                        api, functions[index % 2]["id"], [[1]], f"split-{round_}"
                    ),
                    range(THREADS),
                )
            )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] * (THREADS // 2 - 1) + [201] + [409] * (THREADS // 2)
    assert sum(stored(api_server, function["id"])[0] for function in functions) == ROUNDS


@pytest.mark.parametrize(
    "reference",
    ["", "x" * 201, 5, True, ["ref"], {"id": "ref"}, "a\nb", "ref\n", "a\u0000b", "tab\there"],
    ids=["empty", "201 chars", "number", "boolean", "list", "object", "newline", "trailing newline",
         "nul", "tab"],
)  # fmt: skip
def test_a_bad_reference_id_is_422_naming_it(
    api_server: ApiServer, api: ApiClient, reference: Any
) -> None:
    function = create_function(api)
    response = bulk(api, function["id"], [[1]], reference)
    assert response.status_code == 422, response.text
    assert "reference_id" in response.json()["errors"]
    assert stored(api_server, function["id"]) == (0, 0)


def test_reference_ids_up_to_200_characters_of_any_script(api: ApiClient) -> None:
    function = create_function(api)
    for reference in ("x" * 200, "räksmörgås-42 / ✓", " spaced "):
        first = bulk(api, function["id"], [[1]], reference)
        assert first.status_code == 201, first.text
        assert ids(bulk(api, function["id"], [[1]], reference)) == ids(first)


def test_without_a_reference_every_request_creates_jobs(
    api_server: ApiServer, api: ApiClient
) -> None:
    # The published client sends none; a null one is the same as none.
    function = create_function(api)
    first = bulk(api, function["id"], [[1]], None)
    second = api.post(
        "/jobs/bulk", json={"function_id": function["id"], "bulk_args": [[1]], "reference_id": None}
    )
    assert (first.status_code, second.status_code) == (201, 201)
    assert ids(first) != ids(second)
    assert stored(api_server, function["id"]) == (2, 0)


def test_deleted_jobs_are_left_out_of_a_repeat(api: ApiClient) -> None:
    function = create_function(api)
    first = bulk(api, function["id"], [[1], [2], [3]], "ref")
    assert api.delete(f"/jobs/{ids(first)[1]}").status_code == 204
    again = bulk(api, function["id"], [[1], [2], [3]], "ref")
    assert again.status_code == 200
    assert ids(again) == [ids(first)[0], ids(first)[2]]
    assert counts(api, function["id"])[0] == 2


def test_a_repeat_after_the_build_failed_returns_the_jobs(
    api_server: ApiServer, api: ApiClient
) -> None:
    function = building_function(api)
    first = bulk(api, function["id"], [[1]], "ref")
    set_build(api_server, function["id"], BuildState.BUILD_FAILED, error="no numpy")
    again = bulk(api, function["id"], [[1]], "ref")
    assert again.status_code == 200, again.text
    assert ids(again) == ids(first)
    assert bulk(api, function["id"], [[1]], "new").status_code == 409


def test_deleting_the_function_deletes_its_submissions(
    api_server: ApiServer, api: ApiClient
) -> None:
    function = create_function(api)
    first = bulk(api, function["id"], [[1]], "ref")
    assert one_job(api, {"function_id": function["id"]}, "key").status_code == 201
    assert stored(api_server, function["id"]) == (2, 2)
    assert api.delete(f"/functions/{function['id']}").status_code == 204
    assert stored(api_server, function["id"]) == (0, 0)
    assert bulk(api, function["id"], [[1]], "ref").status_code == 404
    # The key is free again, for another function.
    replacement = create_function(api)
    again = bulk(api, replacement["id"], [[1]], "ref")
    assert again.status_code == 201
    assert ids(again) != ids(first)


def test_a_large_map_repeats_quickly(api_server: ApiServer, api: ApiClient) -> None:
    function = create_function(api)
    count = 100_000
    bulk_args = [[index] for index in range(count)]
    started = time.perf_counter()
    first = bulk(api, function["id"], bulk_args, "large")
    created = time.perf_counter() - started
    started = time.perf_counter()
    again = bulk(api, function["id"], bulk_args, "large")
    repeated = time.perf_counter() - started
    assert (first.status_code, again.status_code) == (201, 200)
    assert ids(again) == ids(first)
    assert again.json()[-1]["args"] == [count - 1]
    assert stored(api_server, function["id"]) == (count, 1)
    # The repeat reads what the first submit stored: it takes about two thirds of the time.
    took = {"created": created, "repeated": repeated}
    assert repeated < 2 * created and repeated < 15, took


# --- POST /jobs with an Idempotency-Key ---


def test_a_repeated_idempotency_key_returns_the_same_job(
    api_server: ApiServer, api: ApiClient
) -> None:
    function = create_function(api)
    body = {"function_id": function["id"], "args": [1], "kwargs": {"k": "v"}}
    first = one_job(api, body, "job-key")
    assert first.status_code == 201, first.text
    set_job_status(api_server, [first.json()["id"]], JobStatus.RUNNING)
    again = one_job(api, body, "job-key")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == JobStatus.RUNNING
    assert stored(api_server, function["id"]) == (1, 1)
    assert counts(api, function["id"])[0] == 1


@pytest.mark.parametrize(
    "change",
    [{"args": [2]}, {"kwargs": {"k": "w"}}, {"args": None}, {"function_id": "other"}],
    ids=["args", "kwargs", "no args", "other function"],
)
def test_the_same_idempotency_key_with_another_body_is_409(
    api_server: ApiServer, api: ApiClient, change: dict[str, Any]
) -> None:
    function, other = create_function(api), create_function(api)
    body = {"function_id": function["id"], "args": [1], "kwargs": {"k": "v"}}
    assert one_job(api, body, "job-key").status_code == 201
    if change.get("function_id") == "other":
        change = {"function_id": other["id"]}
    response = one_job(api, {**body, **change}, "job-key")
    assert response.status_code == 409, response.text
    assert KEY in response.json()["errors"]
    assert stored(api_server, function["id"]) == (1, 1)
    assert stored(api_server, other["id"]) == (0, 0)


def test_concurrent_idempotent_job_creations_create_one_job(
    api_server: ApiServer, api: ApiClient
) -> None:
    function = create_function(api)
    body = {"function_id": function["id"], "args": [1]}
    for round_ in range(ROUNDS):
        answers = at_once(lambda round_=round_: one_job(api, body, f"key-{round_}"))
        assert sorted(answer.status_code for answer in answers) == [200] * (THREADS - 1) + [201]
        assert len({answer.json()["id"] for answer in answers}) == 1
    assert stored(api_server, function["id"]) == (ROUNDS, ROUNDS)
    assert counts(api, function["id"])[1]["pending"] == ROUNDS


@pytest.mark.parametrize("key", ["", "x" * 201, "a\tb"], ids=["empty", "201 chars", "tab"])
def test_a_bad_idempotency_key_is_400_naming_it(
    api_server: ApiServer, api: ApiClient, key: str
) -> None:
    function = create_function(api)
    response = one_job(api, {"function_id": function["id"]}, key)
    assert response.status_code == 400, response.text
    assert KEY in response.json()["errors"]
    assert stored(api_server, function["id"]) == (0, 0)


def test_a_key_whose_job_was_deleted_is_404_naming_it(api: ApiClient) -> None:
    function = create_function(api)
    body = {"function_id": function["id"], "args": [1]}
    job = one_job(api, body, "job-key").json()
    assert api.delete(f"/jobs/{job['id']}").status_code == 204
    response = one_job(api, body, "job-key")
    assert response.status_code == 404
    assert KEY in response.json()["errors"]
    assert counts(api, function["id"])[0] == 0


def test_a_reference_id_and_an_idempotency_key_are_separate(api: ApiClient) -> None:
    function = create_function(api)
    assert bulk(api, function["id"], [[1]], "shared").status_code == 201
    assert one_job(api, {"function_id": function["id"], "args": [1]}, "shared").status_code == 201
    assert counts(api, function["id"])[0] == 2


# --- keys are the caller's ---


def test_another_users_same_keys_are_independent(
    api_server: ApiServer, make_user: Callable[..., TestUser]
) -> None:
    alice, bob = make_user().api, make_user().api
    alices, bobs = create_function(alice), create_function(bob)
    first = bulk(alice, alices["id"], [[1], [2]], "shared")
    alice_job = one_job(alice, {"function_id": alices["id"], "args": [1]}, "shared").json()

    # Repeating Alice's exact requests never shows Bob her jobs.
    theirs = bulk(bob, alices["id"], [[1], [2]], "shared")
    assert theirs.status_code == 404
    assert not any(job_id in theirs.text for job_id in ids(first))
    job = one_job(bob, {"function_id": alices["id"], "args": [1]}, "shared")
    assert job.status_code == 404 and alice_job["id"] not in job.text

    # Bob's own submissions under the same keys are new ones.
    mine = bulk(bob, bobs["id"], [[1], [2]], "shared")
    assert mine.status_code == 201
    assert set(ids(mine)).isdisjoint(ids(first))
    bob_job = one_job(bob, {"function_id": bobs["id"], "args": [1]}, "shared")
    assert bob_job.status_code == 201 and bob_job.json()["id"] != alice_job["id"]

    assert ids(bulk(alice, alices["id"], [[1], [2]], "shared")) == ids(first)
    assert ids(bulk(bob, bobs["id"], [[1], [2]], "shared")) == ids(mine)
    assert stored(api_server, alices["id"]) == (3, 2)
    assert stored(api_server, bobs["id"]) == (3, 2)
