"""List pages: the envelope, sorting, limits and keyset cursors that carry the whole query.

Paging is checked against a Python sort of the same objects: every item exactly once,
in the order the sort keys (with `id` as the final tie-breaker, nulls last) define.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any

import pytest

from compute.statuses import JobStatus
from tests.api.helpers import built_function, set_job_status, submit
from tests.conftest import ApiClient, ApiServer, create_function

RUNTIMES = [None, 0.5, 1.0, 2.0, 1.0]
STATUSES = [JobStatus.PENDING, JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.TIMEOUT]


def sort_value(name: str, value: Any) -> Any:
    return dt.datetime.fromisoformat(value) if name == "creation_date" else value


def reference_order(items: list[dict[str, Any]], sort: list[str]) -> list[str]:
    keys = [(item.lstrip("-"), item.startswith("-")) for item in sort or ["creation_date"]]
    if "id" not in {name for name, _ in keys}:
        keys.append(("id", False))

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for name, descending in keys:
            left, right = a[name], b[name]
            if left is None or right is None:
                if left is None and right is None:
                    continue
                return 1 if left is None else -1  # nulls last in either direction
            left, right = sort_value(name, left), sort_value(name, right)
            if left != right:
                return (-1 if left < right else 1) * (-1 if descending else 1)
        return 0

    return [item["id"] for item in sorted(items, key=functools.cmp_to_key(compare))]


def page_through(api: ApiClient, path: str, **params: Any) -> tuple[list[str], list[dict]]:
    """Every page of a list: the ids in order and each page's meta."""
    page = api.get(path, params=params).json()
    ids, metas = [item["id"] for item in page["data"]], [page["meta"]]
    while page["meta"]["page_cursor"]:
        response = api.get(path, params={"page_cursor": page["meta"]["page_cursor"]})
        assert response.status_code == 200, response.text
        page = response.json()
        ids.extend(item["id"] for item in page["data"])
        metas.append(page["meta"])
    return ids, metas


@pytest.fixture(scope="module")
def job_set(api_server: ApiServer) -> dict[str, Any]:
    """25 jobs of one function, in 5 submissions (so creation dates tie), with mixed outcomes."""
    api = ApiClient(api_server, api_server.token(f"paging-{api_server.database}"))
    function = built_function(api_server, api)
    jobs = [job for batch in range(5) for job in submit(api, function["id"], [[batch]] * 5)]
    for index, job in enumerate(jobs):
        status = STATUSES[index % len(STATUSES)]
        if status != JobStatus.PENDING:
            runtime = RUNTIMES[index % len(RUNTIMES)]
            set_job_status(api_server, [job["id"]], status, runtime=runtime)
    listed = api.get("/jobs", params={"function_id": function["id"], "page_size": 100})
    return {"api": api, "function": function, "jobs": listed.json()["data"]}


JOB_SORTS = [
    [],
    ["-creation_date"],
    ["runtime"],
    ["-runtime"],
    ["status", "-runtime"],
    ["-status", "runtime", "-creation_date"],
    ["-id"],
    ["attempt", "-creation_date"],
    ["runtime", "id"],
    ["-runtime", "-id"],
]


@pytest.mark.parametrize("sort", JOB_SORTS, ids=lambda sort: ",".join(sort) or "default")
def test_job_pages_in_every_sort_order(job_set: dict[str, Any], sort: list[str]) -> None:
    function_id = job_set["function"]["id"]
    params = {"function_id": function_id, "page_size": 4, "sort": sort}
    ids, metas = page_through(job_set["api"], "/jobs", **params)
    assert ids == reference_order(job_set["jobs"], sort)
    assert len(metas) == 7
    assert all(meta["total"] == 25 for meta in metas)


def test_sort_may_be_comma_separated(job_set: dict[str, Any]) -> None:
    params = {"function_id": job_set["function"]["id"], "sort": "status,-runtime"}
    ids, _ = page_through(job_set["api"], "/jobs", **params)
    assert ids == reference_order(job_set["jobs"], ["status", "-runtime"])


@pytest.mark.parametrize(
    "sort", [["name"], ["-memory", "name"], ["cpus", "-creation_date"], ["-timeout", "-id"]]
)
def test_function_pages_in_sort_orders(make_user: Any, sort: list[str]) -> None:
    api = make_user().api
    functions = [
        create_function(
            api, name=f"fn{index % 7:02d}", memory=256 * (index % 3 + 1), cpus=index % 4 + 1
        )
        for index in range(11)
    ]
    ids, metas = page_through(api, "/functions", page_size=3, sort=sort)
    assert ids == reference_order(functions, sort)
    assert [meta["total"] for meta in metas] == [11] * 4


def test_cursor_carries_the_filter(job_set: dict[str, Any]) -> None:
    terms = [{"name": "status", "op": "eq", "val": "failure"}]
    params = {"filter": json.dumps(terms), "page_size": 2, "sort": "-runtime"}
    ids, metas = page_through(job_set["api"], "/jobs", **params)
    failed = [job for job in job_set["jobs"] if job["status"] == "failure"]
    assert ids == reference_order(failed, ["-runtime"])
    assert {meta["total"] for meta in metas} == {len(failed)}


def test_page_size_may_change_between_pages(job_set: dict[str, Any]) -> None:
    api, function_id = job_set["api"], job_set["function"]["id"]
    first = api.get("/jobs", params={"function_id": function_id, "page_size": 5}).json()
    cursor = first["meta"]["page_cursor"]
    rest = api.get("/jobs", params={"page_cursor": cursor, "page_size": 1000}).json()
    ids = [job["id"] for job in first["data"] + rest["data"]]
    assert ids == reference_order(job_set["jobs"], [])
    assert rest["meta"]["page_cursor"] is None


def test_limit_and_total(job_set: dict[str, Any]) -> None:
    api, function_id = job_set["api"], job_set["function"]["id"]
    ids, metas = page_through(api, "/jobs", function_id=function_id, limit=10, page_size=4)
    assert ids == reference_order(job_set["jobs"], [])[:10]
    assert [meta["total"] for meta in metas] == [25, 25, 25]
    assert metas[-1]["page_cursor"] is None
    exact, metas = page_through(api, "/jobs", function_id=function_id, limit=8, page_size=4)
    assert len(exact) == 8 and len(metas) == 2
    counted = api.get("/jobs", params={"function_id": function_id, "limit": 0}).json()
    assert counted == {"data": [], "meta": {"page_cursor": None, "total": 25}}
    everything, _ = page_through(api, "/jobs", function_id=function_id, limit=1000)
    assert len(everything) == 25


def test_default_and_largest_page_size(api_server: ApiServer, api: ApiClient) -> None:
    function = create_function(api)
    submit(api, function["id"], [[index] for index in range(1001)])
    page = api.get("/jobs").json()
    assert len(page["data"]) == 100 and page["meta"]["page_cursor"]
    assert page["meta"]["total"] == 1001
    page = api.get("/jobs", params={"page_size": 1000}).json()
    assert len(page["data"]) == 1000
    last = api.get("/jobs", params={"page_cursor": page["meta"]["page_cursor"]}).json()
    assert len(last["data"]) == 1 and last["meta"]["page_cursor"] is None
    too_big = api.get("/jobs", params={"page_size": 1001})
    assert too_big.status_code == 400 and "page_size" in too_big.json()["errors"]


def test_deleting_while_paging_skips_nothing(api_server: ApiServer, api: ApiClient) -> None:
    function = built_function(api_server, api)
    jobs = [job for batch in range(5) for job in submit(api, function["id"], [[batch]] * 5)]
    order = [job["id"] for job in jobs]
    page = api.get("/jobs", params={"function_id": function["id"], "page_size": 4}).json()
    seen, deleted = [], set()
    while True:
        seen.extend(job["id"] for job in page["data"])
        # As the client's Function.delete does: delete what it has seen, and (as another
        # client might) one item further on.
        for job in page["data"]:
            assert api.delete(f"/jobs/{job['id']}").status_code == 204
        ahead = [job_id for job_id in order if job_id not in seen and job_id not in deleted]
        if ahead[3:]:
            assert api.delete(f"/jobs/{ahead[3]}").status_code == 204
            deleted.add(ahead[3])
        if not page["meta"]["page_cursor"]:
            break
        page = api.get("/jobs", params={"page_cursor": page["meta"]["page_cursor"]}).json()
    assert seen == [job_id for job_id in order if job_id not in deleted]
    assert (
        api.get("/jobs", params={"function_id": function["id"], "limit": 0}).json()["meta"]["total"]
        == 0
    )


def cursor_of(api: ApiClient, path: str, **params: Any) -> str:
    cursor = api.get(path, params={"page_size": 1, **params}).json()["meta"]["page_cursor"]
    assert cursor
    return cursor


def test_tampered_cursor_is_400(job_set: dict[str, Any]) -> None:
    api = job_set["api"]
    cursor = cursor_of(api, "/jobs")
    payload, _, signature = cursor.partition(".")
    flipped = payload[:5] + ("A" if payload[5] != "A" else "B") + payload[6:]
    for bad in [flipped + "." + signature, payload + ".AAAA", payload, "garbage", "", "."]:
        response = api.get("/jobs", params={"page_cursor": bad})
        assert response.status_code == 400, bad
        assert "page_cursor" in response.json()["errors"]


def test_cursor_of_another_resource_is_400(api: ApiClient) -> None:
    create_function(api, name="one", memory=512)
    create_function(api, name="two", memory=512)
    by_name = cursor_of(
        api, "/functions", filter=json.dumps([{"name": "name", "op": "ne", "val": "x"}])
    )
    by_memory = cursor_of(api, "/functions", sort="-memory")
    for cursor in (by_name, by_memory):
        response = api.get("/jobs", params={"page_cursor": cursor})
        assert response.status_code == 400, response.text


def test_another_users_cursor_is_400(job_set: dict[str, Any], api: ApiClient) -> None:
    mine = create_function(api)
    submit(api, mine["id"], [[1], [2]])
    for params in ({"function_id": job_set["function"]["id"]}, {}):
        cursor = cursor_of(job_set["api"], "/jobs", **params)
        response = api.get("/jobs", params={"page_cursor": cursor})
        # Neither the other user's rows nor the total their cursor carries.
        assert response.status_code == 400
        assert "page_cursor" in response.json()["errors"]
        assert "total" not in response.text
    assert job_set["api"].get("/jobs", params={"page_cursor": cursor}).status_code == 200


def test_include_statistics_carries_across_pages(api: ApiClient) -> None:
    functions = [create_function(api, name=f"fn{index}") for index in range(3)]
    submit(api, functions[1]["id"], [[1], [2]])
    page = api.get("/functions", params={"include": "job.statistics", "page_size": 2}).json()
    rest = api.get("/functions", params={"page_cursor": page["meta"]["page_cursor"]}).json()
    statistics = [item["job_statistics"]["pending"] for item in page["data"] + rest["data"]]
    assert statistics == [0, 2, 0]
    plain = api.get("/functions").json()["data"]
    assert all("job_statistics" not in item for item in plain)
    refused = api.get("/jobs", params={"include": "job.statistics"})
    assert refused.status_code == 400 and "include" in refused.json()["errors"]


def test_a_total_across_functions_is_the_jobs_counted(
    api_server: ApiServer, make_user: Any
) -> None:
    # Answered from the functions' counters: it must agree with the rows it stands for.
    api, other = make_user().api, make_user().api
    functions = [built_function(api_server, api) for _ in range(2)]
    jobs = [job for function in functions for job in submit(api, function["id"], [[1]] * 3)]
    submit(other, built_function(api_server, other)["id"], [[1]] * 4)
    set_job_status(api_server, [jobs[0]["id"], jobs[4]["id"]], JobStatus.FAILURE, runtime=1.0)
    failed = json.dumps([{"name": "status", "op": "eq", "val": "failure"}])
    either = json.dumps(
        [{"or": [{"name": "status", "op": "eq", "val": s} for s in ("failure", "pending")]}]
    )
    for params, expected in (({}, 6), ({"filter": failed}, 2), ({"filter": either}, 6)):
        answer = api.get("/jobs", params={**params, "page_size": 1}).json()
        ids, _ = page_through(api, "/jobs", **params)
        assert answer["meta"]["total"] == len(ids) == expected, params
