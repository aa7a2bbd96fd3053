"""`Function.results()` reads many results per request (`POST /jobs/results`), and the
endpoint keeps to the caller's jobs, a byte budget per answer and its field rules."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
import requests

from compute import Function, JobStatus
from tests.conftest import ApiServer

from .outcomes import finish_job, mark_built

if TYPE_CHECKING:
    from tests.conftest import TestUser


def double(x: int) -> int:
    return x * 2


def finished_function(api_server: ApiServer, count: int) -> tuple[Function, list[Any]]:
    fn = Function(double, name="double")
    fn.save()
    jobs = fn.map(range(count))
    mark_built(api_server, fn.id)
    for job in jobs:
        finish_job(api_server, job, result=json.dumps(job.args[0] * 2).encode())
    return fn, jobs


def counting_requests(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the SDK's requests by method and path, with job ids folded."""
    seen: Counter[str] = Counter()
    original = requests.Session.request

    def request(self: requests.Session, method: str, url: str, *args: Any, **kw: Any) -> Any:
        path = url.split("/compute/v1", 1)[-1].split("?")[0]
        if path.startswith("/jobs/") and path.count("/") == 3 and "results" not in path:
            path = "/jobs/<id>/" + path.rsplit("/", 1)[1]
        seen[f"{method} {path}"] += 1
        return original(self, method, url, *args, **kw)

    monkeypatch.setattr(requests.Session, "request", request)
    return seen


def test_results_of_many_jobs_take_few_requests(
    sdk_user: TestUser, api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fn, jobs = finished_function(api_server, 30)
    seen = counting_requests(monkeypatch)
    assert fn.results() == [n * 2 for n in range(30)]
    assert seen["POST /jobs/results"] == 1
    assert seen["GET /jobs/<id>/result"] == 0


def test_an_answer_past_its_byte_budget_names_what_remains(
    sdk_user: TestUser, api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.resources import results

    fn, jobs = finished_function(api_server, 5)
    monkeypatch.setattr(results, "RESULT_BYTES_PER_ANSWER", 1)
    ids = [job.id for job in jobs]
    answer = sdk_user.api.post("/jobs/results", json={"ids": ids}).json()
    assert [entry["id"] for entry in answer["data"]] == ids[:1]
    assert answer["meta"]["remaining"] == ids[1:]
    seen = counting_requests(monkeypatch)
    assert fn.results() == [0, 2, 4, 6, 8]
    assert seen["POST /jobs/results"] == 5


def test_other_users_jobs_are_left_out(
    sdk_user: TestUser, api_server: ApiServer, make_user: Any
) -> None:
    fn, jobs = finished_function(api_server, 2)
    ids = [job.id for job in jobs]
    stranger = make_user()
    answer = stranger.api.post("/jobs/results", json={"ids": ids})
    assert answer.status_code == 200
    assert answer.json() == {"data": [], "meta": {"remaining": []}}
    mine = sdk_user.api.post("/jobs/results", json={"ids": [*ids, "no-such-job"]}).json()
    assert [(entry["id"], entry["status"]) for entry in mine["data"]] == [
        (ids[0], JobStatus.SUCCESS),
        (ids[1], JobStatus.SUCCESS),
    ]


def test_a_job_that_returned_none_reads_as_none(sdk_user: TestUser, api_server: ApiServer) -> None:
    fn = Function(double, name="double")
    fn.save()
    (job,) = fn.map([1])
    mark_built(api_server, fn.id)
    finish_job(api_server, job, result=b"")
    assert fn.results() == [None]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "ids"),
        ({"ids": "abc"}, "ids"),
        ({"ids": [1, 2]}, "ids"),
        ({"ids": ["a"] * 1001}, "ids"),
        ({"ids": ["a"], "limit": 3}, "limit"),
    ],
)
def test_bad_requests_name_the_field(sdk_user: TestUser, body: dict[str, Any], field: str) -> None:
    response = sdk_user.api.post("/jobs/results", json=body)
    assert response.status_code == 422
    assert field in response.json()["errors"]
