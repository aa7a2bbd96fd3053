"""The published `descarteslabs==2.0.3` client, unmodified, against our API.

Each test runs a scenario script in the client's Python 3.10 venv (see conftest.py) as a
fresh user, then checks what the server holds through the raw API or its stores. Job
execution is the worker's: where a test needs a built function or a finished job, it moves
the rows as the worker would (tests.api.helpers), then looks at them through the client.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from compute.server.blobstore import build_log_key, bundle_key, job_log_key, job_result_key
from compute.server.models import BuildState
from tests.api.helpers import (
    building_function,
    built_function,
    create_with_upload,
    set_build,
    set_job_status,
    submit,
)
from tests.conftest import ApiClient, ApiServer
from tests.conftest import TestUser as User

pytestmark = pytest.mark.published_client

IMAGE = "python3.10:latest"
STATISTICS_KEYS = {"pending", "running", "success", "failure", "timeout"}


def get_json(api: ApiClient, path: str, **params: Any) -> Any:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def all_functions(api: ApiClient) -> list[dict[str, Any]]:
    return get_json(api, "/functions", page_size=1000)["data"]


def jobs_of(api: ApiClient, function_id: str) -> list[dict[str, Any]]:
    return get_json(api, "/jobs", function_id=function_id, page_size=1000)["data"]


def blob(api_server: ApiServer, key: str) -> bytes | None:
    return api_server.app.extensions["blobstore"].get(key)


def put_blob(api_server: ApiServer, key: str, data: bytes) -> None:
    api_server.app.extensions["blobstore"].put(key, data)


def parse_date(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- Functions ---------------------------------------------------------------------------


def test_save_creates_the_function_and_uploads_its_bundle(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    requirements = ["six>=1.16", "packaging==24.1"]
    run = run_scenario(
        "functions", "create", user.token, name="adder", image=IMAGE, requirements=requirements
    )
    out = run.result

    saved = out["saved"]
    assert saved["status"] == "building"  # bundle PUT and POSTed: build requested
    assert saved["name"] == "adder" and saved["image"] == IMAGE
    assert (saved["cpus"], saved["memory"], saved["maximum_concurrency"]) == (0.5, 2048, 3)
    assert (saved["timeout"], saved["retry_count"]) == (120, 2)
    assert saved["job_statistics"] is None
    assert out["get"] == saved
    assert out["get_with_statistics"] == {
        **saved,
        "job_statistics": dict.fromkeys(STATISTICS_KEYS, 0),
    }
    assert [f["id"] for f in out["listed"]] == [saved["id"], out["bare"]["id"]]
    assert out["bare"]["cpus"] == 1.0 and out["bare"]["memory"] == 512

    server = get_json(user.api, f"/functions/{saved['id']}")
    assert {key: server[key] for key in ("name", "image", "cpus", "memory", "status")} == {
        "name": "adder",
        "image": IMAGE,
        "cpus": 0.5,
        "memory": 2048,
        "status": "building",
    }
    assert parse_date(server["creation_date"]).isoformat() == saved["creation_date"]
    # nothing the client keeps local leaked into the stored function
    assert not {"requirements", "function", "include_data", "saved"} & set(server)

    with zipfile.ZipFile(io.BytesIO(blob(api_server, bundle_key(saved["id"])))) as bundle:
        names = bundle.namelist()
        entrypoint = bundle.read("__dlentrypoint__.py").decode()
        stored_requirements = bundle.read("requirements.txt").decode()
    assert sorted(names) == ["__dlentrypoint__.py", "requirements.txt"]
    assert "def add(a, b=0):" in entrypoint and entrypoint.rstrip().endswith("main = add")
    assert stored_requirements.splitlines() == requirements

    with zipfile.ZipFile(io.BytesIO(blob(api_server, bundle_key(out["bare"]["id"])))) as bundle:
        assert bundle.namelist() == ["__dlentrypoint__.py"]  # no requirements given


def test_list_pages_past_the_first_page(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    created = [create_with_upload(user.api, name=f"f{n}", image=IMAGE)[0] for n in range(7)]
    function = building_function(user.api, name="with-jobs", image=IMAGE)
    submit(user.api, function["id"], [[1], [2], [3]])
    expected = [f["id"] for f in created] + [function["id"]]

    out = run_scenario("functions", "list_all", user.token, page_size=2).result

    assert out["paged"] == expected  # four pages of two, by creation date
    assert out["default"] == expected
    assert out["collected"] == expected
    assert out["count"] == 8
    statistics = out["with_statistics"]
    assert len(statistics) == 8
    assert statistics[-1] == {"pending": 3, "running": 0, "success": 0, "failure": 0, "timeout": 0}
    assert all(s == dict.fromkeys(STATISTICS_KEYS, 0) for s in statistics[:-1])


def test_search_filters_sorts_and_limits(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    specs = [
        ("alpha", 1, 512, False),
        ("beta", 2, 1024, True),
        ("gamma", 4, 8192, False),
        ("beta", 3, 2048, True),
        ("delta", 0.5, 512, True),
        ("epsilon", 8, 4096, False),
    ]
    for name, cpus, memory, bundled in specs:
        fields = {"name": name, "image": IMAGE, "cpus": cpus, "memory": memory}
        if bundled:
            building_function(user.api, **fields)
        else:
            create_with_upload(user.api, **fields)
    functions = all_functions(user.api)
    by_date = sorted(functions, key=lambda f: (f["creation_date"], f["id"]))
    since = by_date[2]["creation_date"]

    def ids(predicate: Callable[[dict[str, Any]], bool]) -> list[str]:
        return [f["id"] for f in by_date if predicate(f)]

    out = run_scenario(
        "functions", "search", user.token, name="beta", since=parse_date(since).isoformat()
    ).result

    assert out["by_name"] == ids(lambda f: f["name"] == "beta")
    assert out["by_name_count"] == 2
    assert out["status_in"] == ids(lambda f: f["status"] in ("building", "awaiting_bundle"))
    assert len(out["status_in"]) == 6
    assert out["awaiting"] == ids(lambda f: f["status"] == "awaiting_bundle")
    assert len(out["awaiting"]) == 3
    assert out["since"] == [f["id"] for f in by_date[2:]]
    assert out["cpus_at_least_2"] == ids(lambda f: f["cpus"] >= 2)
    assert out["memory_or"] == ids(lambda f: f["memory"] in (512, 8192))
    assert out["name_ne"] == ids(lambda f: f["name"] != "beta")
    assert out["sorted_cpus_desc"] == [
        f["id"] for f in sorted(by_date, key=lambda f: (-f["cpus"], f["name"]))
    ]
    assert out["sorted_name"] == [f["id"] for f in sorted(by_date, key=lambda f: f["name"])]
    assert out["limited"] == [f["id"] for f in reversed(by_date)][:3]
    assert out["limited_paged"] == [f["id"] for f in by_date][:5]
    combined = [
        f for f in by_date[2:] if f["cpus"] >= 2 and f["status"] in ("building", "awaiting_bundle")
    ]
    assert out["combined"] == [f["id"] for f in sorted(combined, key=lambda f: -f["memory"])][:2]
    assert out["combined_count"] == len(ids(lambda f: f["cpus"] >= 2))

    ranges = run_scenario(
        "functions", "other_ranges", user.token, since=parse_date(since).isoformat()
    ).result
    assert ranges["before"] == [f["id"] for f in by_date[:2]]
    assert ranges["cpus_between"] == ids(lambda f: 1 < f["cpus"] < 4)


def test_attribute_changes_are_patched_and_image_is_immutable(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    function = building_function(user.api, name="before", image=IMAGE, cpus=1, memory=512)

    out = run_scenario(
        "functions", "update", user.token, id=function["id"], new_name="after"
    ).result

    assert out["after_save"]["memory"] == 4096 and out["after_save"]["cpus"] == 2.0
    assert out["image_error"]["type"] == "ValueError"
    assert "image" in out["image_error"]["message"]
    assert out["renamed"]["name"] == "after" and out["renamed"]["retry_count"] == 0
    server = get_json(user.api, f"/functions/{function['id']}")
    assert (server["name"], server["memory"], server["cpus"]) == ("after", 4096, 2.0)
    assert (server["image"], server["retry_count"], server["status"]) == (IMAGE, 0, "building")


def test_refresh_sees_changes_and_keeps_job_statistics(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    function = built_function(api_server, user.api, name="refreshing", image=IMAGE, memory=512)
    assert function["status"] == "building"  # the answer of the bundle POST

    out = run_scenario("functions", "refresh", user.token, id=function["id"]).result

    assert out["before"]["status"] == "success"  # built, nothing outstanding
    assert out["before"]["job_statistics"] == dict.fromkeys(STATISTICS_KEYS, 0)
    assert out["waited"] == "Function refreshing starting status success\n"
    assert out["plain"]["memory"] == 1024 and out["plain"]["status"] == "running"
    assert out["plain"]["job_statistics"] is None
    assert out["with_statistics"]["memory"] == 1024
    assert out["with_statistics"]["job_statistics"]["pending"] == 2


def test_build_log_is_gunzipped_and_printed(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    function = building_function(user.api, name="logged", image=IMAGE)
    empty = run_scenario("functions", "build_log", user.token, id=function["id"]).result
    assert empty["printed"] == "\n"  # no log yet: an empty (gzipped) body

    text = "Collecting six>=1.16\nSuccessfully installed six-1.16.0 ✓\n"
    put_blob(api_server, build_log_key(function["id"]), text.encode())
    response = user.api.get(f"/functions/{function['id']}/log")
    assert "Content-Encoding" not in response.headers
    assert gzip.decompress(response.content).decode() == text

    out = run_scenario("functions", "build_log", user.token, id=function["id"]).result
    assert out["printed"] == text + "\n"


def test_delete_removes_every_job_while_paging_then_the_function(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    # more jobs than the default page (100): the client deletes them as it pages
    out = run_scenario(
        "functions", "delete", user.token, name="doomed", image=IMAGE, jobs=130
    ).result

    assert len(set(out["job_ids"])) == 130
    assert out["first"]["args"] == [0, 0]
    assert out["deleted_error"]["type"] == "AttributeError"  # the client marks it deleted
    assert user.api.get(f"/functions/{out['id']}").status_code == 404
    assert all(
        user.api.get(f"/jobs/{job_id}").status_code == 404 for job_id in out["job_ids"][::13]
    )
    assert get_json(user.api, "/jobs", limit=0)["meta"]["total"] == 0
    assert blob(api_server, bundle_key(out["id"])) is None


# --- Jobs --------------------------------------------------------------------------------


def test_jobs_are_submitted_by_call_save_and_map(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    out = run_scenario("jobs", "submit", user.token, name="submitter", image=IMAGE).result

    function_id = out["function"]["id"]
    assert out["function"]["status"] == "building"  # jobs wait for the build
    assert out["function"]["job_statistics"]["pending"] == 12
    assert (out["called"]["args"], out["called"]["kwargs"]) == ([1, 2], {})
    assert (out["keyword"]["args"], out["keyword"]["kwargs"]) == ([5], {"b": 6})
    assert (out["explicit"]["args"], out["explicit"]["kwargs"]) == ([3], {"b": 4})
    assert [job["args"] for job in out["mapped"]] == [[10, 1], [20, 2], [30, 3], [40, 4]]
    assert [job["args"] for job in out["scalars"]] == [[7], [8], [9]]
    assert [(job["args"], job["kwargs"]) for job in out["with_kwargs"]] == [
        ([1], {"b": 100}),
        ([2], {"b": 200}),
    ]
    everything = [out["called"], out["keyword"], out["explicit"]]
    everything += out["mapped"] + out["scalars"] + out["with_kwargs"]
    for job in everything:
        assert job["function_id"] == function_id
        assert job["status"] == "pending" and job["runtime"] is None
        assert job["creation_date"]

    server = {job["id"]: job for job in jobs_of(user.api, function_id)}
    assert set(server) == {job["id"] for job in everything}
    for job in everything:
        assert (server[job["id"]]["args"], server[job["id"]]["kwargs"]) == (
            job["args"],
            job["kwargs"],
        )


def test_jobs_are_read_searched_and_refreshed(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    function = built_function(api_server, user.api, name="reader", image=IMAGE)
    jobs = submit(user.api, function["id"], [[n] for n in range(5)])
    ids = [job["id"] for job in jobs]
    set_job_status(api_server, ids[:1], "success", runtime=1.5)
    set_job_status(api_server, ids[1:2], "failure", runtime=2.0)
    set_job_status(api_server, ids[2:3], "running")
    other = building_function(user.api, name="other", image=IMAGE)
    submit(user.api, other["id"], [[9]])

    out = run_scenario("jobs", "read", user.token, job_id=ids[0], function_id=function["id"]).result

    assert out["job"]["id"] == ids[0] and out["job"]["function_id"] == function["id"]
    assert out["job"]["status"] == "success" and out["job"]["runtime"] in (1, 2)
    assert out["function_of_job"] == function["id"]
    assert out["waited"] == f"Job {ids[0]} starting status success\n"
    assert out["by_function"] == ids and out["by_function_count"] == 5
    assert out["pending"] == ids[3:]
    assert out["pending_in"] == ids[2:]
    assert out["finished"] == ids[:2]
    assert out["fn_jobs"] == ids
    assert out["paged"] == ids
    assert out["legacy"] == ids[3:]
    # one bulk request: equal creation dates, so `id` (ascending) breaks the tie
    newest_first = sorted(
        sorted(jobs, key=lambda j: j["id"]), key=lambda j: j["creation_date"], reverse=True
    )
    assert out["newest_first"] == [job["id"] for job in newest_first][:2]


def test_a_canceled_job_reads_as_a_failure(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    function = built_function(api_server, user.api, name="canceled", image=IMAGE)
    (job,) = submit(user.api, function["id"], [[1]])
    assert user.api.post(f"/jobs/{job['id']}/cancel").status_code == 200

    out = run_scenario("jobs", "read", user.token, job_id=job["id"], function_id=function["id"])

    # The client cannot parse `canceled`: it reads the failure it is shown, and its
    # wait returns at once, as for any failed job.
    assert out.result["job"]["status"] == "failure"
    assert out.result["waited"] == f"Job {job['id']} starting status failure\n"
    assert get_json(user.api, f"/jobs/{job['id']}")["error"] == "canceled"


def test_rerun_resubmits_only_failed_and_timed_out_jobs(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    function = built_function(api_server, user.api, name="rerun", image=IMAGE)
    jobs = submit(user.api, function["id"], [[1], [2], [3]])
    ids = [job["id"] for job in jobs]

    assert run_scenario("jobs", "rerun", user.token, function_id=function["id"]).result == {
        "rerun": []
    }

    set_job_status(api_server, ids[:1], "success", runtime=1)
    set_job_status(api_server, ids[1:2], "failure", runtime=1)
    set_job_status(api_server, ids[2:], "timeout", runtime=1)
    assert get_json(user.api, f"/functions/{function['id']}")["status"] == "failure"

    rerun = run_scenario("jobs", "rerun", user.token, function_id=function["id"]).result["rerun"]
    assert sorted(job["id"] for job in rerun) == sorted(ids[1:])
    assert all(job["status"] == "pending" for job in rerun)
    assert get_json(user.api, f"/functions/{function['id']}")["status"] == "running"


def test_job_results_and_logs(run_scenario: Callable, api_server: ApiServer, user: User) -> None:
    function = built_function(api_server, user.api, name="outputs", image=IMAGE)
    jobs = submit(user.api, function["id"], [[n] for n in range(4)])
    fid = function["id"]
    ids = [job["id"] for job in jobs]
    set_job_status(api_server, ids[:3], "success", runtime=1)
    put_blob(api_server, job_result_key(fid, ids[0]), json.dumps({"sum": 3, "ok": [1.5]}).encode())
    put_blob(api_server, job_result_key(fid, ids[1]), b"\x00\xffraw")
    lines = [
        {"date": "2026-01-02T03:04:05.123456Z", "log": "starting"},
        {"date": "2026-01-02T03:04:06.000000Z", "log": "done: 3"},
    ]
    put_blob(
        api_server,
        job_log_key(fid, ids[0]),
        "".join(json.dumps(line) + "\n" for line in lines).encode(),
    )

    out = run_scenario(
        "jobs",
        "outputs",
        user.token,
        results={"json": ids[0], "bytes": ids[1], "none": ids[2], "pending": ids[3]},
        logs={"written": ids[0], "empty": ids[3]},
    ).result

    results = out["results"]
    assert results["json"] == {"sum": 3, "ok": [1.5]} and results["json_type"] == "dict"
    assert results["bytes"] == b"\x00\xffraw".hex() and results["bytes_type"] == "bytes"
    assert results["none"] is None and results["none_type"] == "NoneType"
    assert results["pending"] is None
    logs = out["logs"]
    assert logs["written"] == "starting\ndone: 3\n"
    assert logs["written_timestamped"].splitlines() == [
        "2026-01-02 03:04:05.123456+00:00 starting",
        "2026-01-02 03:04:06+00:00 done: 3",
    ]
    assert logs["empty"] == "" and logs["empty_timestamped"] == ""


def test_job_delete(run_scenario: Callable, api_server: ApiServer, user: User) -> None:
    function = building_function(user.api, name="deleter", image=IMAGE)
    jobs = submit(user.api, function["id"], [[1], [2]])

    assert run_scenario("jobs", "delete", user.token, job_id=jobs[0]["id"]).result == {
        "deleted": True
    }

    assert user.api.get(f"/jobs/{jobs[0]['id']}").status_code == 404
    assert [job["id"] for job in jobs_of(user.api, function["id"])] == [jobs[1]["id"]]
    statistics = get_json(user.api, f"/functions/{function['id']}", include="job.statistics")
    assert statistics["job_statistics"]["pending"] == 1


# --- Errors ------------------------------------------------------------------------------


def test_missing_ids_are_not_found(run_scenario: Callable, user: User) -> None:
    out = run_scenario("errors", "missing", user.token, missing_id="0" * 32).result

    for name in ("function_get", "job_get", "job_on_missing_function"):
        assert out[name]["type"] == "NotFoundError", (name, out[name])


def test_other_users_objects_are_invisible(
    run_scenario: Callable, make_user: Callable[..., User]
) -> None:
    owner, stranger = make_user(), make_user()
    function = building_function(owner.api, name="private", image=IMAGE)
    job = submit(owner.api, function["id"], [[1]])[0]

    out = run_scenario(
        "errors", "foreign", stranger.token, function_id=function["id"], job_id=job["id"]
    ).result

    assert out["function_get"]["type"] == "NotFoundError"
    assert out["job_get"]["type"] == "NotFoundError"
    assert out["submit"]["type"] == "NotFoundError"
    assert out["listed"] == [] and out["jobs_listed"] == [] and out["count"] == 0
    assert len(jobs_of(owner.api, function["id"])) == 1  # the stranger added nothing


def test_bad_queries_are_bad_requests(run_scenario: Callable, user: User) -> None:
    out = run_scenario("errors", "bad_queries", user.token).result

    for name, error in out.items():
        assert error["type"] == "BadRequestError", (name, error)
    assert "filter" in out["bad_json"]["message"]
    assert "nope" in out["unknown_attribute"]["message"]
    assert "like" in out["unknown_operator"]["message"]
    assert "bogus" in out["unknown_parameter"]["message"]
    assert "nope" in out["bad_sort"]["message"]


def test_invalid_input_is_a_validation_error(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    out = run_scenario("errors", "invalid_input", user.token, name="valid", image=IMAGE).result

    assert out["negative_cpus"]["type"] == "ValidationError"
    assert "cpus" in out["negative_cpus"]["message"]
    assert out["zero_memory"]["type"] == "ValidationError"
    assert "memory" in out["zero_memory"]["message"]
    assert out["bulk_kwargs_length"]["type"] == "ValidationError"
    assert "bulk_kwargs" in out["bulk_kwargs_length"]["message"]
    assert out["patch"]["type"] == "ValidationError"
    assert "memory" in out["patch"]["message"]
    # only the valid function exists, unchanged by the rejected PATCH, with no jobs
    functions = all_functions(user.api)
    assert [f["id"] for f in functions] == [out["function_id"]]
    assert functions[0]["memory"] == 512
    assert jobs_of(user.api, out["function_id"]) == []


def test_submitting_to_a_failed_build_is_a_conflict(
    run_scenario: Callable, api_server: ApiServer, user: User
) -> None:
    function = building_function(user.api, name="broken", image=IMAGE)
    set_build(api_server, function["id"], BuildState.BUILD_FAILED, error="No matching distribution")

    out = run_scenario("errors", "conflict", user.token, function_id=function["id"]).result

    # `build_failed` would keep its Function.wait_for_completion polling: it reads `failure`
    assert out["status"] == "failure"
    assert out["waited"] == "Function broken starting status failure\n"
    assert out["call"]["type"] == "ConflictError"
    assert "build" in out["call"]["message"].lower()
    assert out["map"]["type"] == "ConflictError"
    assert jobs_of(user.api, function["id"]) == []
    # any other client still reads `build_failed`
    assert user.api.get(f"/functions/{function['id']}").json()["status"] == "build_failed"
