"""A function's status, derived from its build state and its per-status job counts."""

from __future__ import annotations

from typing import Any

import pytest

from api.wire import PROTOCOL_JOB_STATUSES
from compute.server.models import BuildState
from compute.statuses import FunctionStatus, JobStatus
from tests.api.helpers import (
    building_function,
    create_with_upload,
    put_bundle,
    set_build,
    set_job_status,
    submit,
)
from tests.conftest import ApiClient, ApiServer


def fetch(api: ApiClient, function_id: str) -> dict[str, Any]:
    response = api.get(f"/functions/{function_id}", params={"include": "job.statistics"})
    assert response.status_code == 200
    return response.json()


def status(api: ApiClient, function_id: str) -> str:
    return fetch(api, function_id)["status"]


def listed_status(api: ApiClient, function_id: str) -> str:
    """The status as the list endpoint (and its status filter) sees it."""
    page = api.get("/functions", params={"id": function_id}).json()
    (function,) = page["data"]
    by_filter = api.get("/functions", params={"id": function_id, "status": function["status"]})
    assert by_filter.json()["meta"]["total"] == 1
    return function["status"]


def test_bundle_moves_awaiting_bundle_to_building(api: ApiClient) -> None:
    function, url = create_with_upload(api)
    assert status(api, function["id"]) == FunctionStatus.AWAITING_BUNDLE
    put_bundle(url)
    assert status(api, function["id"]) == FunctionStatus.AWAITING_BUNDLE
    api.post(f"/functions/{function['id']}/bundle")
    assert status(api, function["id"]) == FunctionStatus.BUILDING
    assert listed_status(api, function["id"]) == FunctionStatus.BUILDING


def test_jobs_before_the_build_ends_keep_it_building(api: ApiClient) -> None:
    function, url = create_with_upload(api)
    submit(api, function["id"], [[1]])
    assert status(api, function["id"]) == FunctionStatus.AWAITING_BUNDLE
    put_bundle(url)
    api.post(f"/functions/{function['id']}/bundle")
    submit(api, function["id"], [[2], [3]])
    assert status(api, function["id"]) == FunctionStatus.BUILDING
    assert fetch(api, function["id"])["job_statistics"]["pending"] == 3


def test_built_function_without_jobs_is_success(api_server: ApiServer, api: ApiClient) -> None:
    function = building_function(api)
    set_build(api_server, function["id"], BuildState.BUILT)
    assert status(api, function["id"]) == FunctionStatus.SUCCESS
    assert listed_status(api, function["id"]) == FunctionStatus.SUCCESS


def test_build_success_with_pending_jobs_is_running(api_server: ApiServer, api: ApiClient) -> None:
    function = building_function(api)
    submit(api, function["id"], [[1]])
    set_build(api_server, function["id"], BuildState.BUILT)
    assert status(api, function["id"]) == FunctionStatus.RUNNING


def test_build_failure(api_server: ApiServer, api: ApiClient) -> None:
    function = building_function(api)
    set_build(api_server, function["id"], BuildState.BUILD_FAILED, error="bad requirement")
    assert status(api, function["id"]) == FunctionStatus.BUILD_FAILED
    assert listed_status(api, function["id"]) == FunctionStatus.BUILD_FAILED


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("dl-python/2.0.3", FunctionStatus.FAILURE),
        ("dl-python/2.0.0", FunctionStatus.FAILURE),
        ("compute-python", FunctionStatus.BUILD_FAILED),
        ("dl-python/3.1.0", FunctionStatus.BUILD_FAILED),
    ],
)
def test_a_failed_build_reads_as_failure_to_the_published_client(
    api_server: ApiServer, api: ApiClient, agent: str, expected: FunctionStatus
) -> None:
    # Its Function.wait_for_completion returns on `success` or `failure` only.
    function = building_function(api)
    set_build(api_server, function["id"], BuildState.BUILD_FAILED, error="bad requirement")
    headers = {"User-Agent": agent}
    path = f"/functions/{function['id']}"
    assert api.get(path, headers=headers).json()["status"] == expected
    listed = api.get("/functions", params={"id": function["id"]}, headers=headers).json()
    assert listed["data"][0]["status"] == expected
    patched = api.patch(path, json={"memory": 1024}, headers=headers).json()
    assert patched["status"] == expected


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([JobStatus.PENDING, JobStatus.SUCCESS], FunctionStatus.RUNNING),
        ([JobStatus.RUNNING, JobStatus.SUCCESS], FunctionStatus.RUNNING),
        ([JobStatus.RUNNING, JobStatus.FAILURE], FunctionStatus.RUNNING),
        ([JobStatus.SUCCESS, JobStatus.SUCCESS], FunctionStatus.SUCCESS),
        ([JobStatus.SUCCESS, JobStatus.FAILURE], FunctionStatus.FAILURE),
        ([JobStatus.SUCCESS, JobStatus.TIMEOUT], FunctionStatus.FAILURE),
        ([JobStatus.TIMEOUT, JobStatus.FAILURE], FunctionStatus.FAILURE),
    ],
)
def test_status_follows_job_outcomes(
    api_server: ApiServer, api: ApiClient, outcomes: list[str], expected: str
) -> None:
    function = building_function(api)
    set_build(api_server, function["id"], BuildState.BUILT)
    jobs = submit(api, function["id"], [[index] for index in range(len(outcomes))])
    for job, outcome in zip(jobs, outcomes):
        if outcome != JobStatus.PENDING:
            set_job_status(api_server, [job["id"]], outcome, runtime=1.0)
    body = fetch(api, function["id"])
    assert body["status"] == expected
    assert listed_status(api, function["id"]) == expected
    # A client that does not name `canceled` (this one) is shown the protocol's statuses.
    counts = {status.value: outcomes.count(status) for status in PROTOCOL_JOB_STATUSES}
    assert body["job_statistics"] == counts


def test_lifecycle_with_resubmission(api_server: ApiServer, api: ApiClient) -> None:
    function = building_function(api)
    function_id = function["id"]
    jobs = submit(api, function_id, [[1], [2], [3]])
    set_build(api_server, function_id, BuildState.BUILT)
    assert status(api, function_id) == FunctionStatus.RUNNING

    ids = [job["id"] for job in jobs]
    set_job_status(api_server, ids, JobStatus.RUNNING)
    assert fetch(api, function_id)["job_statistics"]["running"] == 3
    set_job_status(api_server, ids, JobStatus.SUCCESS, runtime=0.5)
    assert status(api, function_id) == FunctionStatus.SUCCESS

    (extra,) = submit(api, function_id, [[4]])
    assert status(api, function_id) == FunctionStatus.RUNNING
    set_job_status(api_server, [extra["id"]], JobStatus.TIMEOUT, runtime=9.0)
    assert status(api, function_id) == FunctionStatus.FAILURE

    single = api.post("/jobs", json={"function_id": function_id, "args": [5]})
    assert single.status_code == 201
    assert status(api, function_id) == FunctionStatus.RUNNING
    set_job_status(api_server, [single.json()["id"]], JobStatus.SUCCESS, runtime=1.0)
    assert status(api, function_id) == FunctionStatus.FAILURE

    api.post("/jobs/rerun", json={"function_id": function_id})
    assert status(api, function_id) == FunctionStatus.RUNNING
    set_job_status(api_server, [extra["id"]], JobStatus.SUCCESS, runtime=1.0)
    body = fetch(api, function_id)
    assert body["status"] == FunctionStatus.SUCCESS
    assert body["job_statistics"] == {
        "pending": 0,
        "running": 0,
        "success": 5,
        "failure": 0,
        "timeout": 0,
    }


def test_statistics_match_the_job_list(api_server: ApiServer, api: ApiClient) -> None:
    function = building_function(api)
    set_build(api_server, function["id"], BuildState.BUILT)
    jobs = submit(api, function["id"], [[index] for index in range(12)])
    ids = [job["id"] for job in jobs]
    set_job_status(api_server, ids[:3], JobStatus.SUCCESS, runtime=1.0)
    set_job_status(api_server, ids[3:5], JobStatus.FAILURE, runtime=1.0)
    set_job_status(api_server, ids[5:6], JobStatus.TIMEOUT, runtime=1.0)
    set_job_status(api_server, ids[6:8], JobStatus.RUNNING)
    api.delete(f"/jobs/{ids[11]}")
    statistics = fetch(api, function["id"])["job_statistics"]
    assert statistics == {"pending": 3, "running": 2, "success": 3, "failure": 2, "timeout": 1}
    for job_status, count in statistics.items():
        params = {"function_id": function["id"], "status": job_status}
        page = api.get("/jobs", params=params).json()
        assert page["meta"]["total"] == count == len(page["data"])
        # The same question through a filter the counters cannot answer is counted in SQL.
        params["filter"] = '[{"name": "runtime", "op": "gte", "val": 0}]'
        counted = api.get("/jobs", params={**params, "sort": "id"}).json()["meta"]["total"]
        assert counted == (count if job_status in {"success", "failure", "timeout"} else 0)
