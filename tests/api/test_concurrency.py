"""Requests racing each other: counts and builds stay exact when clients repeat themselves.

The published client retries POSTs and DELETEs after 5xx answers and timeouts, so the same
request may arrive several times at once. SQLite does not lock rows read before a write,
which is where these races bite.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from compute.statuses import JobStatus
from tests.api.helpers import (
    built_function,
    create_with_upload,
    put_bundle,
    set_job_status,
    submit,
)
from tests.conftest import ApiClient, ApiServer, create_function
from worker import publishing

THREADS = 8
ROUNDS = 5


def at_once(call: Callable[[], Any], times: int = THREADS) -> list[Any]:
    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(lambda _: call(), range(times)))


def statistics(api: ApiClient, function_id: str) -> dict[str, int]:
    response = api.get(f"/functions/{function_id}", params={"include": "job.statistics"})
    return response.json()["job_statistics"]


def test_repeated_bundle_posts_request_one_build(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No broker runs in these tests: count the doorbell's rings instead.
    builds: list[str] = []
    monkeypatch.setattr(publishing, "request_build", builds.append)
    for _ in range(ROUNDS):
        function, url = create_with_upload(api)
        assert put_bundle(url).status_code == 200
        path = f"/functions/{function['id']}/bundle"
        answers = at_once(lambda path=path: api.post(path))
        assert {answer.status_code for answer in answers} == {200}
        assert {answer.json()["status"] for answer in answers} == {"building"}
        assert builds.count(function["id"]) == 1


def test_repeated_deletes_count_the_job_out_once(api: ApiClient) -> None:
    function = create_function(api)
    for _ in range(ROUNDS):
        (job,) = submit(api, function["id"], [[1]])
        path = f"/jobs/{job['id']}"
        answers = at_once(lambda path=path: api.delete(path).status_code)
        assert sorted(answers) == [204] + [404] * (THREADS - 1)
        assert statistics(api, function["id"])["pending"] == 0
    assert api.get(f"/functions/{function['id']}").json()["status"] == "awaiting_bundle"


def test_concurrent_submissions_all_counted(api_server: ApiServer, api: ApiClient) -> None:
    function = built_function(api_server, api)
    answers = at_once(lambda: submit(api, function["id"], [[index] for index in range(50)]))
    assert sum(len(jobs) for jobs in answers) == THREADS * 50
    assert statistics(api, function["id"])["pending"] == THREADS * 50
    total = api.get("/jobs", params={"function_id": function["id"], "limit": 0})
    assert total.json()["meta"]["total"] == THREADS * 50
    assert api.get(f"/functions/{function['id']}").json()["status"] == "running"


def test_concurrent_reruns_reset_each_job_once(api_server: ApiServer, api: ApiClient) -> None:
    function = built_function(api_server, api)
    jobs = submit(api, function["id"], [[index] for index in range(20)])
    set_job_status(api_server, [job["id"] for job in jobs], JobStatus.FAILURE, runtime=1.0)
    answers = at_once(lambda: api.post("/jobs/rerun", json={"function_id": function["id"]}))
    rerun = [job["id"] for answer in answers for job in answer.json()]
    assert sorted(rerun) == sorted(job["id"] for job in jobs)
    assert statistics(api, function["id"]) == {
        "pending": 20,
        "running": 0,
        "success": 0,
        "failure": 0,
        "timeout": 0,
    }
