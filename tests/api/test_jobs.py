"""Jobs over HTTP: submit one or many, rerun, read, change, delete, result and log."""

from __future__ import annotations

import time
from statistics import median

import pytest

from compute.server.models import BuildState
from compute.statuses import FunctionStatus, JobStatus
from tests.api.helpers import building_function, built_function, set_build, set_job_status, submit
from tests.api.snapshots import snapshot
from tests.conftest import ApiClient, ApiServer, create_function

JOB_KEYS = {"id", "function_id", "creation_date", "args", "kwargs", "runtime", "status"}


def statistics(api: ApiClient, function_id: str) -> dict[str, int]:
    response = api.get(f"/functions/{function_id}", params={"include": "job.statistics"})
    return response.json()["job_statistics"]


# --- submit ---


def test_create_one_job(api: ApiClient) -> None:
    function = create_function(api)
    body = {"function_id": function["id"], "args": [1, "a"], "kwargs": {"x": [1, None]}}
    response = api.post("/jobs", json=body)
    assert response.status_code == 201
    job = response.json()
    assert set(job) >= JOB_KEYS
    assert job["function_id"] == function["id"]
    assert (job["args"], job["kwargs"]) == ([1, "a"], {"x": [1, None]})
    assert job["status"] == JobStatus.PENDING and job["runtime"] is None
    assert job["creation_date"].endswith("+00:00")
    assert api.get(f"/jobs/{job['id']}").json() == job


def test_create_job_without_arguments(api: ApiClient) -> None:
    function = create_function(api)
    job = api.post("/jobs", json={"function_id": function["id"]}).json()
    assert job["args"] is None and job["kwargs"] is None


def test_create_job_for_unknown_function_is_404(api: ApiClient) -> None:
    response = api.post("/jobs", json={"function_id": "0" * 32, "args": []})
    assert response.status_code == 404


def test_bulk_keeps_order_and_wraps_non_lists(api: ApiClient) -> None:
    function = create_function(api)
    jobs = submit(
        api,
        function["id"],
        [[1, 2], 3, [], None, {"a": 1}],
        bulk_kwargs=[{"k": 0}, {}, {"k": 2}, {}, {}],
    )
    assert [job["args"] for job in jobs] == [[1, 2], [3], [], [None], [{"a": 1}]]
    assert [job["kwargs"] for job in jobs] == [{"k": 0}, {}, {"k": 2}, {}, {}]
    assert all(job["function_id"] == function["id"] for job in jobs)
    listed = api.get("/jobs", params={"function_id": function["id"]}).json()["data"]
    assert [job["id"] for job in listed] == [job["id"] for job in jobs]


def test_bulk_without_kwargs(api: ApiClient) -> None:
    function = create_function(api)
    jobs = submit(api, function["id"], [[1], [2]], bulk_kwargs=None)
    assert [job["kwargs"] for job in jobs] == [None, None]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bulk_args": [[1], [2]], "bulk_kwargs": [{}]}, "bulk_kwargs"),
        ({"bulk_args": [[1]], "bulk_kwargs": [{}, {}]}, "bulk_kwargs"),
        ({"bulk_args": [[1]], "bulk_kwargs": [1]}, "bulk_kwargs"),
        ({"bulk_args": [[1]], "bulk_kwargs": {}}, "bulk_kwargs"),
        ({"bulk_args": {"a": 1}}, "bulk_args"),
        ({"bulk_args": "1,2"}, "bulk_args"),
        ({}, "bulk_args"),
    ],
)
def test_bulk_invalid_is_422(api: ApiClient, body: dict, field: str) -> None:
    function = create_function(api)
    response = api.post("/jobs/bulk", json={"function_id": function["id"], **body})
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert statistics(api, function["id"])["pending"] == 0


def test_bulk_of_ten_thousand_jobs(api: ApiClient) -> None:
    function = create_function(api)
    count = 10_000
    started = time.perf_counter()
    jobs = submit(api, function["id"], [[index] for index in range(count)])
    bulk = time.perf_counter() - started
    assert [job["args"] for job in jobs] == [[index] for index in range(count)]
    assert len({job["id"] for job in jobs}) == count
    assert statistics(api, function["id"])["pending"] == count
    params = {"function_id": function["id"], "page_size": 1000}
    page = api.get("/jobs", params=params).json()
    assert page["meta"]["total"] == count
    seen = [job["id"] for job in page["data"]]
    while page["meta"]["page_cursor"]:
        page = api.get("/jobs", params={"page_cursor": page["meta"]["page_cursor"]}).json()
        seen.extend(job["id"] for job in page["data"])
    assert seen == [job["id"] for job in jobs]
    counted = api.get("/jobs", params={"function_id": function["id"], "limit": 0}).json()
    assert counted == {"data": [], "meta": {"page_cursor": None, "total": count}}
    # In one request a job costs a small part of a request of its own (near a hundredth).
    singles = []
    for index in range(10):
        started = time.perf_counter()
        response = api.post("/jobs", json={"function_id": function["id"], "args": [index]})
        singles.append(time.perf_counter() - started)
        assert response.status_code == 201
    assert bulk / count < median(singles) / 5, {"bulk": bulk, "single jobs": singles}


def test_submitting_to_build_failed_function_is_409(api_server: ApiServer, api: ApiClient) -> None:
    function = building_function(api)
    set_build(api_server, function["id"], BuildState.BUILD_FAILED, error="numpy not found")
    for path, body in [
        ("/jobs", {"function_id": function["id"], "args": [1]}),
        ("/jobs/bulk", {"function_id": function["id"], "bulk_args": [[1]]}),
        ("/jobs/rerun", {"function_id": function["id"]}),
    ]:
        response = api.post(path, json=body)
        assert response.status_code == 409, path
        assert "numpy not found" in response.json()["detail"]
        assert "function_id" in response.json()["errors"]
    assert statistics(api, function["id"])["pending"] == 0


# --- rerun ---


def test_rerun_resets_only_failed_and_timed_out(api_server: ApiServer, api: ApiClient) -> None:
    function = built_function(api_server, api)
    jobs = submit(api, function["id"], [[i] for i in range(5)])
    ids = [job["id"] for job in jobs]
    set_job_status(api_server, ids[:1], JobStatus.SUCCESS, runtime=1.0)
    set_job_status(api_server, ids[1:2], JobStatus.FAILURE, runtime=2.0)
    set_job_status(api_server, ids[2:3], JobStatus.TIMEOUT, runtime=3.0)
    set_job_status(api_server, ids[3:4], JobStatus.RUNNING)
    set_job_status(api_server, ids[4:5], JobStatus.FAILURE, runtime=4.0)
    assert api.get(f"/functions/{function['id']}").json()["status"] == FunctionStatus.RUNNING
    set_job_status(api_server, ids[3:4], JobStatus.SUCCESS, runtime=1.0)
    assert api.get(f"/functions/{function['id']}").json()["status"] == FunctionStatus.FAILURE

    response = api.post("/jobs/rerun", json={"function_id": function["id"]})
    assert response.status_code in (200, 201)
    rerun = response.json()
    assert [job["id"] for job in rerun] == [ids[1], ids[2], ids[4]]
    assert all(job["status"] == JobStatus.PENDING and job["runtime"] is None for job in rerun)
    assert api.get(f"/functions/{function['id']}").json()["status"] == FunctionStatus.RUNNING
    assert api.get(f"/jobs/{ids[0]}").json()["status"] == JobStatus.SUCCESS
    assert api.get(f"/jobs/{ids[0]}").json()["runtime"] == 1.0
    expected = {"pending": 3, "running": 0, "success": 2, "failure": 0, "timeout": 0}
    assert statistics(api, function["id"]) == expected
    again = api.post("/jobs/rerun", json={"function_id": function["id"]})
    assert again.json() == []


# --- read and change ---


def test_patch_pending_job_arguments(api: ApiClient) -> None:
    function = create_function(api)
    (job,) = submit(api, function["id"], [[1]])
    response = api.patch(f"/jobs/{job['id']}", json={"args": [2, 3], "kwargs": {"a": 1}})
    assert response.status_code == 200
    assert response.json()["args"] == [2, 3] and response.json()["kwargs"] == {"a": 1}
    assert api.get(f"/jobs/{job['id']}").json() == response.json()
    same = api.patch(f"/jobs/{job['id']}", json={"function_id": function["id"]})
    assert same.status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "success"), ("runtime", 1.0), ("id", "x"), ("creation_date", "2020-01-01")],
)
def test_patch_readonly_job_field_is_422(api: ApiClient, field: str, value: object) -> None:
    function = create_function(api)
    (job,) = submit(api, function["id"], [[1]])
    response = api.patch(f"/jobs/{job['id']}", json={field: value})
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert api.get(f"/jobs/{job['id']}").json() == job


def test_patch_function_id_is_422(api: ApiClient) -> None:
    function = create_function(api)
    other = create_function(api)
    (job,) = submit(api, function["id"], [[1]])
    response = api.patch(f"/jobs/{job['id']}", json={"function_id": other["id"]})
    assert response.status_code == 422
    assert "function_id" in response.json()["errors"]
    assert api.get(f"/jobs/{job['id']}").json()["function_id"] == function["id"]


def test_patch_finished_job_arguments_is_409(api_server: ApiServer, api: ApiClient) -> None:
    function = built_function(api_server, api)
    (job,) = submit(api, function["id"], [[1]])
    set_job_status(api_server, [job["id"]], JobStatus.FAILURE, runtime=1.0)
    response = api.patch(f"/jobs/{job['id']}", json={"args": [2]})
    assert response.status_code == 409
    assert api.get(f"/jobs/{job['id']}").json()["args"] == [1]


# --- delete, result, log ---


def test_delete_job_updates_counts(api_server: ApiServer, api: ApiClient) -> None:
    function = built_function(api_server, api)
    first, second = submit(api, function["id"], [[1], [2]])
    set_job_status(api_server, [first["id"]], JobStatus.FAILURE, runtime=1.0)
    assert api.get(f"/functions/{function['id']}").json()["status"] == FunctionStatus.RUNNING

    assert api.delete(f"/jobs/{second['id']}").status_code == 204
    assert api.get(f"/jobs/{second['id']}").status_code == 404
    assert api.get(f"/functions/{function['id']}").json()["status"] == FunctionStatus.FAILURE
    assert statistics(api, function["id"])["pending"] == 0
    assert api.delete(f"/jobs/{first['id']}").status_code == 204
    assert statistics(api, function["id"]) == dict.fromkeys(statistics(api, function["id"]), 0)
    assert api.get(f"/functions/{function['id']}").json()["status"] == FunctionStatus.SUCCESS
    assert api.delete(f"/jobs/{first['id']}").status_code == 404


def test_result_and_log_of_a_new_job_are_empty(api: ApiClient) -> None:
    function = create_function(api)
    (job,) = submit(api, function["id"], [[1]])
    result = api.get(f"/jobs/{job['id']}/result")
    assert result.status_code == 200 and result.content == b""
    log = api.get(f"/jobs/{job['id']}/log")
    assert log.status_code == 200 and log.content == b""
    assert log.headers["Content-Type"].startswith("application/x-ndjson")


def test_result_and_log_are_served_as_stored(api_server: ApiServer, api: ApiClient) -> None:
    function = create_function(api)
    (job,) = submit(api, function["id"], [[1]])
    store = api_server.app.extensions["blobstore"]
    line = b'{"date": "2026-01-01T00:00:00.000000Z", "log": "hi"}\n'
    store.put(f"jobs/{function['id']}/{job['id']}/result", b"\x00\x01raw")
    store.put(f"jobs/{function['id']}/{job['id']}/log.ndjson", line)
    assert api.get(f"/jobs/{job['id']}/result").content == b"\x00\x01raw"
    assert api.get(f"/jobs/{job['id']}/log").content == line


def test_the_log_end_is_served_for_a_suffix_range(api_server: ApiServer, api: ApiClient) -> None:
    function = create_function(api)
    (job,) = submit(api, function["id"], [[1]])
    log = b"".join(
        b'{"date": "2026-01-01T00:00:00.000000Z", "log": "%d"}\n' % n for n in range(100)
    )
    store = api_server.app.extensions["blobstore"]
    store.put(f"jobs/{function['id']}/{job['id']}/log.ndjson", log)
    path = f"/jobs/{job['id']}/log"

    tail = api.get(path, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == log[-100:]
    assert tail.headers["Content-Range"] == f"bytes {len(log) - 100}-{len(log) - 1}/{len(log)}"
    whole = api.get(path, headers={"Range": f"bytes=-{len(log) + 10}"})
    assert whole.status_code == 206 and whole.content == log
    # what follows an offset (how a running job's log is followed), or nothing yet
    rest = api.get(path, headers={"Range": "bytes=100-"})
    assert rest.status_code == 206 and rest.content == log[100:]
    assert rest.headers["Content-Range"] == f"bytes 100-{len(log) - 1}/{len(log)}"
    nothing = api.get(path, headers={"Range": f"bytes={len(log)}-"})
    assert nothing.status_code == 416 and nothing.headers["Content-Range"] == f"bytes */{len(log)}"
    # any other range, or a malformed one, is ignored: the whole log, as without one
    for ignored in ("bytes=0-10", "bytes=-5,-6", "bytes=nope", "items=-5"):
        answer = api.get(path, headers={"Range": ignored})
        assert (answer.status_code, answer.content) == (200, log), ignored


# --- arguments round-trip exactly ---

TRICKY_VALUES = [
    1,
    1.0,
    -0.5,
    1e-300,
    1.7976931348623157e308,
    2**63,
    10**30,
    True,
    False,
    None,
    "",
    "é ü 中文 😀",
    'quote " backslash \\ tab \t',
    {"nested": [[], {}, [None]]},
    [],
]


@pytest.mark.parametrize("path", ["/jobs", "/jobs/bulk"])
def test_arguments_round_trip_exactly(api: ApiClient, path: str) -> None:
    function = create_function(api)
    kwargs = {"k": TRICKY_VALUES, "ключ": {"a": 1.5}}
    if path == "/jobs":
        body = {"function_id": function["id"], "args": TRICKY_VALUES, "kwargs": kwargs}
        job = api.post(path, json=body).json()
    else:
        (job,) = submit(api, function["id"], [TRICKY_VALUES], bulk_kwargs=[kwargs])
    for answer in (job, api.get(f"/jobs/{job['id']}").json()):
        assert answer["args"] == TRICKY_VALUES
        assert [type(value) for value in answer["args"]] == [type(v) for v in TRICKY_VALUES]
        assert answer["kwargs"] == kwargs


@pytest.mark.parametrize("text", ["nul \u0000 inside", "lone surrogate \ud800"])
def test_text_no_database_can_store_is_refused(
    api_server: ApiServer, api: ApiClient, text: str
) -> None:
    """PostgreSQL's json cannot hold \\u0000 or a lone surrogate: refused on every database."""
    function = create_function(api)
    before = snapshot(api_server)
    response = api.post("/jobs", json={"function_id": function["id"], "args": [text]})
    assert response.status_code == 422, response.text
    assert "args" in response.json()["errors"]
    assert before.differences(snapshot(api_server)) == []
