"""List filters: every operator on every attribute type, checked against a Python evaluation.

Each case runs the filter through the API and through `matches` below over the same
objects; the ids must agree. Query mistakes are 400s naming the parameter.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import re
from collections.abc import Callable
from typing import Any

import pytest

from compute.server.models import BuildState
from compute.statuses import JobStatus
from tests.api.helpers import building_function, set_build, set_job_status, submit
from tests.conftest import ApiClient, ApiServer, create_function

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def as_datetime(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


TYPES: dict[str, Callable[[Any], Any]] = {
    "id": str,
    "function_id": str,
    "name": str,
    "image": str,
    "status": str,
    "cpus": float,
    "runtime": float,
    "memory": lambda value: int(float(value)),
    "maximum_concurrency": lambda value: int(float(value)),
    "timeout": lambda value: int(float(value)),
    "retry_count": lambda value: int(float(value)),
    "attempt": lambda value: int(float(value)),
    "creation_date": as_datetime,
}


def like_pattern(pattern: str) -> re.Pattern[str]:
    """SQL LIKE (`%`, `_`, `\\` escapes) as a case-insensitive regular expression."""
    parts, escaped = [], False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            parts.append({"%": ".*", "_": "."}.get(char, re.escape(char)))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def matches(obj: dict[str, Any], term: dict[str, Any]) -> bool:
    if "or" in term:
        return any(matches(obj, part) for part in term["or"])
    if "and" in term:
        return all(matches(obj, part) for part in term["and"])
    value, op = obj[term["name"]], term["op"]
    if op in ("isnull", "isnotnull"):
        return (value is None) == (op == "isnull")
    if value is None:
        return False  # SQL: a comparison with NULL is never true
    convert = TYPES[term["name"]]
    actual, wanted = convert(value), convert(term["val"])
    if op == "prefix":
        return actual.startswith(wanted)
    if op == "ilike":
        return like_pattern(wanted).fullmatch(actual) is not None
    return COMPARE[op](actual, wanted)


def fetch_all(api: ApiClient, path: str, **params: Any) -> tuple[list[str], int]:
    response = api.get(path, params={"page_size": 1000, **params})
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["meta"]["page_cursor"] is None
    return [item["id"] for item in page["data"]], page["meta"]["total"]


FUNCTIONS = [
    {"name": "alpha", "cpus": 0.5, "memory": 512, "timeout": 10, "retry_count": 0},
    {"name": "Alpine_x", "cpus": 1, "memory": 1024, "timeout": 60, "retry_count": 1},
    {"name": "beta%", "cpus": 2, "memory": 1024, "image": "python3.12:latest"},
    {"name": "a_b", "cpus": 4.5, "memory": 4096, "maximum_concurrency": 1},
    {"name": "gamma", "cpus": 1.25, "memory": 2048, "timeout": 3600, "retry_count": 5},
]


@pytest.fixture(scope="module")
def catalog(api_server: ApiServer) -> dict[str, Any]:
    """One user's functions in several statuses and jobs in every status."""
    from tests.conftest import ApiClient as Client

    api = Client(api_server, api_server.token(f"filters-{api_server.database}"))
    functions = [create_function(api, **FUNCTIONS[0]), create_function(api, **FUNCTIONS[1])]
    functions += [building_function(api, **fields) for fields in FUNCTIONS[2:]]
    set_build(api_server, functions[4]["id"], BuildState.BUILT)
    jobs = submit(api, functions[4]["id"], [[index] for index in range(4)])
    jobs += submit(api, functions[3]["id"], [[index] for index in range(2)])
    outcomes = [
        (JobStatus.SUCCESS, 1.0),
        (JobStatus.FAILURE, 2.5),
        (JobStatus.TIMEOUT, 3600.0),
        (JobStatus.RUNNING, None),
    ]
    for job, (status, runtime) in zip(jobs, outcomes):
        set_job_status(api_server, [job["id"]], status, runtime=runtime)
    functions = [api.get(f"/functions/{f['id']}").json() for f in functions]
    jobs = [api.get(f"/jobs/{job['id']}").json() for job in jobs]
    return {"api": api, "functions": functions, "jobs": jobs}


def check(catalog: dict[str, Any], path: str, terms: list[Any]) -> None:
    objects = catalog["functions" if path == "/functions" else "jobs"]
    expected = [obj["id"] for obj in objects if all(matches(obj, term) for term in terms)]
    got, total = fetch_all(catalog["api"], path, filter=json.dumps(terms), sort="id")
    assert got == sorted(expected), terms
    assert total == len(expected)


def leaf(name: str, op: str, val: Any = None) -> dict[str, Any]:
    return {"name": name, "op": op} if val is None else {"name": name, "op": op, "val": val}


ORDERED_OPS = ["eq", "ne", "gt", "gte", "lt", "lte"]
FUNCTION_CASES = [
    *(leaf("name", op, "alpha") for op in ORDERED_OPS),
    leaf("name", "prefix", "alp"),
    leaf("name", "prefix", "a_"),
    leaf("name", "prefix", "beta%"),
    leaf("name", "ilike", "ALP%"),
    leaf("name", "ilike", "a_b"),
    leaf("name", "ilike", "a\\_b"),
    leaf("name", "ilike", "%\\%"),
    leaf("image", "eq", "python3.12:latest"),
    leaf("image", "prefix", "python3.12"),
    *(leaf("cpus", op, 1.25) for op in ORDERED_OPS),
    leaf("cpus", "gt", 1),
    *(leaf("memory", op, 1024.0) for op in ORDERED_OPS),
    leaf("memory", "eq", "2048"),
    leaf("timeout", "gte", 60.0),
    leaf("retry_count", "lt", 1),
    leaf("maximum_concurrency", "eq", 1),
    *(leaf("status", op, "building") for op in ORDERED_OPS),
    leaf("status", "prefix", "await"),
    leaf("status", "ilike", "%ING"),
    leaf("name", "isnull"),
    leaf("name", "isnotnull"),
    {"or": [leaf("status", "eq", "building"), leaf("status", "eq", "awaiting_bundle")]},
    {
        "or": [
            leaf("memory", "eq", 512),
            {"and": [leaf("cpus", "gt", 1), leaf("memory", "lt", 4096)]},
        ]
    },
    {
        "and": [
            {"or": [leaf("name", "prefix", "a"), leaf("name", "prefix", "b")]},
            leaf("cpus", "ne", 2),
        ]
    },
]


@pytest.mark.parametrize("term", FUNCTION_CASES, ids=json.dumps)
def test_function_filter(catalog: dict[str, Any], term: dict[str, Any]) -> None:
    check(catalog, "/functions", [term])


@pytest.mark.parametrize("op", ORDERED_OPS)
@pytest.mark.parametrize("form", ["+00:00", "Z", "no-fraction", "naive", "fraction-3"])
def test_datetime_filter_forms(catalog: dict[str, Any], op: str, form: str) -> None:
    stamp = catalog["functions"][2]["creation_date"]  # "...HH:MM:SS.ffffff+00:00"
    value = {
        "+00:00": stamp,
        "Z": stamp.replace("+00:00", "Z"),
        "no-fraction": stamp[:19] + "+00:00",
        "naive": stamp[:26],
        "fraction-3": stamp[:23] + "Z",
    }[form]
    check(catalog, "/functions", [leaf("creation_date", op, value)])


JOB_CASES = [
    *(leaf("runtime", op, 2.5) for op in ORDERED_OPS),
    leaf("runtime", "lt", 3600),
    leaf("runtime", "isnull"),
    leaf("runtime", "isnotnull"),
    *(leaf("status", op, "running") for op in ORDERED_OPS),
    {"or": [leaf("status", "eq", "failure"), leaf("status", "eq", "timeout")]},
    {"or": [leaf("runtime", "isnull"), leaf("runtime", "gt", 2)]},
    leaf("attempt", "eq", 0.0),
    leaf("attempt", "gt", 0),
    leaf("start_date", "isnull"),
    leaf("end_date", "isnotnull"),
]


@pytest.mark.parametrize("term", JOB_CASES, ids=json.dumps)
def test_job_filter(catalog: dict[str, Any], term: dict[str, Any]) -> None:
    check(catalog, "/jobs", [term])


def test_job_filter_by_function_and_creation_date(catalog: dict[str, Any]) -> None:
    function = catalog["functions"][4]
    check(catalog, "/jobs", [leaf("function_id", "eq", function["id"])])
    check(catalog, "/jobs", [leaf("function_id", "ne", function["id"])])
    first = catalog["jobs"][0]["creation_date"]
    check(catalog, "/jobs", [leaf("creation_date", "gt", first)])
    check(catalog, "/jobs", [leaf("creation_date", "lte", first.replace("+00:00", "Z"))])


def test_legacy_plain_parameters(catalog: dict[str, Any]) -> None:
    api, jobs, functions = catalog["api"], catalog["jobs"], catalog["functions"]
    got, _ = fetch_all(api, "/jobs", status=["failure", "timeout"], sort="id")
    assert got == sorted(job["id"] for job in jobs if job["status"] in {"failure", "timeout"})
    got, total = fetch_all(api, "/jobs", function_id=functions[3]["id"], sort="id")
    assert got == sorted(job["id"] for job in jobs if job["function_id"] == functions[3]["id"])
    assert total == 2
    got, _ = fetch_all(api, "/functions", status="building", memory="1024.0")
    assert got == [functions[2]["id"]]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"filter": "not json"}, "filter"),
        ({"filter": '{"name": "status"'}, "filter"),
        ({"filter": '"status"'}, "filter"),
        ({"filter": '[{"name": "colour", "op": "eq", "val": 1}]'}, "filter"),
        ({"filter": '[{"name": "status", "op": "like", "val": "x"}]'}, "filter"),
        ({"filter": '[{"name": "status", "op": "eq"}]'}, "filter"),
        ({"filter": '[{"name": "status", "op": "eq", "val": null}]'}, "filter"),
        ({"filter": '[{"name": "status", "op": "eq", "val": "done"}]'}, "filter"),
        ({"filter": '[{"name": "memory", "op": "eq", "val": "lots"}]'}, "filter"),
        ({"filter": '[{"name": "memory", "op": "eq", "val": 1.5}]'}, "filter"),
        ({"filter": '[{"name": "memory", "op": "prefix", "val": "1"}]'}, "filter"),
        ({"filter": '[{"name": "creation_date", "op": "gt", "val": "yesterday"}]'}, "filter"),
        ({"filter": '[{"or": []}]'}, "filter"),
        ({"filter": '[{"or": [], "name": "x"}]'}, "filter"),
        ({"filter": "[1]"}, "filter"),
        ({"filter": '[{"name": "id", "op": "eq", "val": "x", "extra": 1}]'}, "filter"),
        ({"colour": "red"}, "colour"),
        ({"sort": "colour"}, "sort"),
        ({"include": "jobs"}, "include"),
        ({"limit": "many"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "1001"}, "page_size"),
        ({"status": "done"}, "filter"),
    ],
)
def test_malformed_function_query_is_400(
    catalog: dict[str, Any], params: dict[str, str], param: str
) -> None:
    response = catalog["api"].get("/functions", params=params)
    assert response.status_code == 400, response.text
    assert param in response.json()["errors"]
    assert response.json()["detail"]


def test_deeply_nested_filter_is_400(catalog: dict[str, Any]) -> None:
    term: dict[str, Any] = leaf("status", "eq", "running")
    for _ in range(20):
        term = {"or": [term]}
    response = catalog["api"].get("/jobs", params={"filter": json.dumps([term])})
    assert response.status_code == 400
    assert "filter" in response.json()["errors"]
