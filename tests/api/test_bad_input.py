"""Bad input on every endpoint: always a 4xx naming the field, never a 5xx, nothing stored.

Each case runs against a user with one function (bundle uploaded, not posted), one
pending job and one function still without a bundle. Every table's row count and
content hash, and every blob file's hash, must be identical before and after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pytest
from werkzeug.exceptions import HTTPException

from api import API_PREFIX
from tests.api.helpers import create_with_upload, put_bundle, submit
from tests.api.snapshots import snapshot
from tests.conftest import ApiClient, ApiServer

JSON = {"Content-Type": "application/json"}
BIG = 50 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    field: str | None = None
    json: Any = None
    data: str | bytes | None = None
    headers: dict[str, str | None] | None = None
    params: dict[str, Any] | None = None
    # Words the message must hold when no field is named (a 404 names the object).
    detail: str | None = None
    config: dict[str, Any] | None = None


def post_json(name: str, path: str, body: Any, status: int, field: str | None) -> Case:
    return Case(name, "POST", path, status, field, json=body)


def raw(
    name: str,
    method: str,
    path: str,
    data: str | bytes,
    status: int = 400,
    field: str | None = None,
) -> Case:
    return Case(name, method, path, status, field, data=data, headers=JSON)


def unknown(name: str, method: str, path: str, json: Any = None) -> Case:
    """A request naming an object that does not exist: a 404 that names it."""
    return Case(name, method, path, 404, json=json, detail=f"{UNKNOWN!r} not found")


def upload(name: str, url: str, data: bytes, status: int, field: str | None, **extra: Any) -> Case:
    """A bundle PUT, without an Authorization header as the published client sends it."""
    headers = {"Content-Type": "application/octet-stream", "Authorization": None}
    return Case(name, "PUT", url, status, field, data=data, headers=headers, **extra)


FN = "/functions"
ONE = "/functions/{function}"
JOB = "/jobs/{job}"
UNKNOWN = "0123456789abcdef0123456789abcdef"
FORGED: dict[str, str | None] = {"Authorization": "Bearer forged.token.value"}
NO_UPLOAD = "No bundle upload at this URL"
LONG_NAME = "x" * 201
TARGET_REFERENCE = "target-map"
TOO_MANY_JOBS = [0] * 100_001

CASES = [
    # Bodies that are not a JSON object.
    raw("malformed json", "POST", FN, "{"),
    raw("trailing garbage", "POST", FN, '{"name": "a"} x'),
    raw("nan constant", "POST", FN, '{"cpus": NaN}', field="cpus"),
    raw(
        "infinity in args",
        "POST",
        "/jobs",
        '{"function_id": "{function}", "args": [Infinity]}',
        field="args",
    ),
    raw("deep nesting", "POST", "/jobs", "[" * 100_000 + "]" * 100_000, field="body"),
    raw("invalid utf-8", "POST", FN, b'{"name": "\xff\xfe"}'),
    Case(
        "form content type", "POST", FN, 400, data="name=x", headers={"Content-Type": "text/plain"}
    ),
    Case("no body", "POST", "/jobs", 400),
    post_json("body is a list", FN, [{"name": "a"}], 400, "body"),
    post_json("body is a string", "/jobs", "x", 400, "body"),
    raw("body is null", "PATCH", ONE, "null"),
    post_json("bulk body is a list", "/jobs/bulk", [[1]], 400, "body"),
    # Function fields.
    post_json("unknown field", FN, {"colour": "red"}, 422, "colour"),
    post_json("readonly status", FN, {"status": "success"}, 422, "status"),
    post_json("readonly id", FN, {"id": "mine"}, 422, "id"),
    post_json("name not a string", FN, {"name": 5}, 422, "name"),
    post_json("name with slash", FN, {"name": "a/b"}, 422, "name"),
    post_json("name with backslash", FN, {"name": "a\\b"}, 422, "name"),
    post_json("name with newline", FN, {"name": "a\nb"}, 422, "name"),
    post_json("name with trailing newline", FN, {"name": "fn\n"}, 422, "name"),
    post_json("image with trailing newline", FN, {"image": "python3.11:latest\n"}, 422, "image"),
    post_json("name with nul", FN, {"name": "a\u0000b"}, 422, "name"),
    post_json("name empty", FN, {"name": ""}, 422, "name"),
    post_json("name too long", FN, {"name": LONG_NAME}, 422, "name"),
    post_json("cpus zero", FN, {"cpus": 0}, 422, "cpus"),
    post_json("cpus negative", FN, {"cpus": -1}, 422, "cpus"),
    post_json("cpus a string", FN, {"cpus": "2"}, 422, "cpus"),
    post_json("cpus absurd", FN, {"cpus": 1e12}, 422, "cpus"),
    post_json("cpus boolean", FN, {"cpus": True}, 422, "cpus"),
    post_json("memory zero", FN, {"memory": 0}, 422, "memory"),
    post_json("memory fractional", FN, {"memory": 1.5}, 422, "memory"),
    post_json("memory absurd", FN, {"memory": 10**30}, 422, "memory"),
    post_json("memory null", FN, {"memory": None}, 422, "memory"),
    post_json("timeout zero", FN, {"timeout": 0}, 422, "timeout"),
    post_json("timeout a year", FN, {"timeout": 365 * 86400}, 422, "timeout"),
    post_json("concurrency zero", FN, {"maximum_concurrency": 0}, 422, "maximum_concurrency"),
    post_json("retry_count -1", FN, {"retry_count": -1}, 422, "retry_count"),
    post_json("retry_count absurd", FN, {"retry_count": 10**6}, 422, "retry_count"),
    post_json("image with space", FN, {"image": "python 3.11"}, 422, "image"),
    post_json("image path", FN, {"image": "../../etc/passwd"}, 422, "image"),
    post_json("image empty", FN, {"image": ""}, 422, "image"),
    post_json("image a list", FN, {"image": ["python"]}, 422, "image"),
    Case("patch memory zero", "PATCH", ONE, 422, "memory", json={"memory": 0}),
    Case("patch image", "PATCH", ONE, 422, "image", json={"image": "other:latest"}),
    Case("patch statistics", "PATCH", ONE, 422, "job_statistics", json={"job_statistics": {}}),
    Case("patch unknown", "PATCH", ONE, 422, "colour", json={"colour": "red", "memory": 1}),
    # Jobs.
    post_json("job without function", "/jobs", {"args": [1]}, 422, "function_id"),
    post_json("job function_id number", "/jobs", {"function_id": 5}, 422, "function_id"),
    post_json("job unknown function", "/jobs", {"function_id": "0" * 32}, 404, None),
    post_json("job function_id nul", "/jobs", {"function_id": "a\u0000"}, 422, "function_id"),
    post_json(
        "job args a string", "/jobs", {"function_id": "{function}", "args": "1"}, 422, "args"
    ),
    post_json(
        "job kwargs a list", "/jobs", {"function_id": "{function}", "kwargs": [1]}, 422, "kwargs"
    ),
    post_json(
        "job readonly status",
        "/jobs",
        {"function_id": "{function}", "status": "success"},
        422,
        "status",
    ),
    post_json(
        "job unknown field", "/jobs", {"function_id": "{function}", "retries": 1}, 422, "retries"
    ),
    post_json(
        "bulk_args not a list",
        "/jobs/bulk",
        {"function_id": "{function}", "bulk_args": 3},
        422,
        "bulk_args",
    ),
    post_json("bulk_args missing", "/jobs/bulk", {"function_id": "{function}"}, 422, "bulk_args"),
    post_json(
        "bulk too many",
        "/jobs/bulk",
        {"function_id": "{function}", "bulk_args": TOO_MANY_JOBS},
        422,
        "bulk_args",
    ),
    post_json(
        "bulk_kwargs length",
        "/jobs/bulk",
        {"function_id": "{function}", "bulk_args": [[1]], "bulk_kwargs": []},
        422,
        "bulk_kwargs",
    ),
    post_json(
        "bulk_kwargs entry",
        "/jobs/bulk",
        {"function_id": "{function}", "bulk_args": [[1]], "bulk_kwargs": [[1]]},
        422,
        "bulk_kwargs",
    ),
    post_json(
        "bulk unknown field",
        "/jobs/bulk",
        {"function_id": "{function}", "bulk_args": [], "x": 1},
        422,
        "x",
    ),
    post_json("bulk without function", "/jobs/bulk", {"bulk_args": [[1]]}, 422, "function_id"),
    *(
        post_json(
            f"bulk reference_id {name}",
            "/jobs/bulk",
            {"function_id": "{function}", "bulk_args": [[1]], "reference_id": reference},
            422,
            "reference_id",
        )
        for name, reference in [
            ("empty", ""),
            ("too long", LONG_NAME),
            ("a list", ["a"]),
            ("with newline", "a\n"),
            ("with nul", "a\u0000"),
        ]
    ),
    post_json(
        "bulk reference_id reused",
        "/jobs/bulk",
        {"function_id": "{function}", "bulk_args": [[2]], "reference_id": TARGET_REFERENCE},
        409,
        "reference_id",
    ),
    *(
        Case(
            f"job Idempotency-Key {name}",
            "POST",
            "/jobs",
            400,
            "Idempotency-Key",
            json={"function_id": "{function}"},
            headers={"Idempotency-Key": key},
        )
        for name, key in [("empty", ""), ("too long", LONG_NAME), ("with tab", "a\tb")]
    ),
    post_json("rerun without function", "/jobs/rerun", {}, 422, "function_id"),
    post_json(
        "rerun unknown field", "/jobs/rerun", {"function_id": "{function}", "x": 1}, 422, "x"
    ),
    Case("job patch runtime", "PATCH", JOB, 422, "runtime", json={"runtime": 1.0}),
    Case("job patch status", "PATCH", JOB, 422, "status", json={"status": "success"}),
    Case("job patch args dict", "PATCH", JOB, 422, "args", json={"args": {"a": 1}}),
    Case("job patch function_id", "PATCH", JOB, 422, "function_id", json={"function_id": "0" * 32}),
    post_json("credentials wrong type", "/credentials", {"client_id": 5}, 422, "client_id"),
    post_json("credentials unknown", "/credentials", {"token": "x"}, 422, "token"),
    # Huge bodies.
    Case("50 MB function", "POST", FN, 413, data=b'{"name": "' + b"x" * BIG + b'"}', headers=JSON),
    Case(
        "50 MB bulk",
        "POST",
        "/jobs/bulk",
        413,
        data=b"[" + b"[1]," * (BIG // 4) + b"[1]]",
        headers=JSON,
    ),
    # Queries.
    Case("filter not json", "GET", FN, 400, "filter", params={"filter": "{"}),
    Case("filter nul string", "GET", "/jobs", 400, "filter", params={"function_id": "a\u0000"}),
    Case(
        "filter unknown op",
        "GET",
        "/jobs",
        400,
        "filter",
        params={"filter": '[{"name":"id","op":"in","val":"x"}]'},
    ),
    Case("unknown list param", "GET", "/jobs", 400, "colour", params={"colour": "red"}),
    Case("page_size not int", "GET", FN, 400, "page_size", params={"page_size": "many"}),
    Case("sort unknown", "GET", "/jobs", 400, "sort", params={"sort": "-colour"}),
    Case("include unknown", "GET", ONE, 400, "include", params={"include": "owner"}),
    Case("limit negative", "GET", "/jobs", 400, "limit", params={"limit": "-1"}),
    Case("page_size too large", "GET", FN, 400, "page_size", params={"page_size": "100000"}),
    Case("page_size zero", "GET", "/jobs", 400, "page_size", params={"page_size": "0"}),
    Case("wait not a number", "GET", JOB, 400, "wait", params={"wait": "a while"}),
    Case("wait negative", "GET", JOB, 400, "wait", params={"wait": "-1"}),
    Case("wait nan", "GET", JOB, 400, "wait", params={"wait": "nan"}),
    Case("wait past the most", "GET", JOB, 400, "wait", params={"wait": "3600"}),
    Case("cursor garbage", "GET", "/jobs", 400, "page_cursor", params={"page_cursor": "abc"}),
    Case(
        "cursor forged",
        "GET",
        FN,
        400,
        "page_cursor",
        params={"page_cursor": "eyJ0ZXJtcyI6W119.AAAAAAAAAAAAAAAAAAAAAA"},
    ),
    Case(
        "filter unknown attribute",
        "GET",
        FN,
        400,
        "filter",
        params={"filter": '[{"name":"owner_id","op":"eq","val":"x"}]'},
    ),
    Case(
        "filter value of the wrong type",
        "GET",
        FN,
        400,
        "filter",
        params={"filter": '[{"name":"memory","op":"gt","val":"lots"}]'},
    ),
    Case(
        "filter bad status",
        "GET",
        "/jobs",
        400,
        "filter",
        params={"filter": '[{"name":"status","op":"eq","val":"done"}]'},
    ),
    Case("filter not a list", "GET", "/jobs", 400, "filter", params={"filter": '"status"'}),
    Case(
        "filter empty or",
        "GET",
        FN,
        400,
        "filter",
        params={"filter": '[{"or": []}]'},
    ),
    Case("list include unknown", "GET", FN, 400, "include", params={"include": "owner"}),
    Case("status param unknown", "GET", FN, 400, "filter", params={"status": "done"}),
    # Objects that do not exist, on every endpoint that names one.
    unknown("get unknown function", "GET", f"/functions/{UNKNOWN}"),
    unknown("patch unknown function", "PATCH", f"/functions/{UNKNOWN}", {"memory": 1}),
    unknown("delete unknown function", "DELETE", f"/functions/{UNKNOWN}"),
    unknown("log of unknown function", "GET", f"/functions/{UNKNOWN}/log"),
    unknown("bundle of unknown function", "POST", f"/functions/{UNKNOWN}/bundle"),
    unknown("get unknown job", "GET", f"/jobs/{UNKNOWN}"),
    unknown("patch unknown job", "PATCH", f"/jobs/{UNKNOWN}", {"args": [1]}),
    unknown("delete unknown job", "DELETE", f"/jobs/{UNKNOWN}"),
    unknown("result of unknown job", "GET", f"/jobs/{UNKNOWN}/result"),
    unknown("log of unknown job", "GET", f"/jobs/{UNKNOWN}/log"),
    unknown("revoke of unknown token", "DELETE", f"/tokens/{UNKNOWN}"),
    *(
        Case(f"{path} with a forged token", "GET", path, 401, headers=FORGED, detail="not valid")
        for path in ("/whoami", "/tokens", "/workers", "/images")
    ),
    unknown("cancel of unknown job", "POST", f"/jobs/{UNKNOWN}/cancel"),
    unknown("cancel of unknown function's jobs", "POST", f"/functions/{UNKNOWN}/cancel"),
    post_json("cancel job_ids not a list", ONE + "/cancel", {"job_ids": "all"}, 422, "job_ids"),
    post_json("cancel job_ids of numbers", ONE + "/cancel", {"job_ids": [1]}, 422, "job_ids"),
    post_json("cancel unknown field", ONE + "/cancel", {"query": {}}, 422, "query"),
    raw("cancel body a list", "POST", ONE + "/cancel", "[1]"),
    unknown("rerun unknown function", "POST", "/jobs/rerun", {"function_id": UNKNOWN}),
    unknown(
        "bulk to unknown function",
        "POST",
        "/jobs/bulk",
        {"function_id": UNKNOWN, "bulk_args": [[1]]},
    ),
    Case("delete id with nul", "DELETE", "/functions/%00", 404),
    # Bodies of the remaining endpoints.
    raw("credentials not json", "POST", "/credentials", "client_id=x"),
    post_json("credentials a list", "/credentials", [None], 400, "body"),
    post_json("rerun body a list", "/jobs/rerun", ["{function}"], 400, "body"),
    post_json("results without ids", "/jobs/results", {}, 422, "ids"),
    post_json("results ids not a list", "/jobs/results", {"ids": "{job}"}, 422, "ids"),
    post_json("results too many ids", "/jobs/results", {"ids": ["x"] * 1001}, 422, "ids"),
    post_json("results unknown field", "/jobs/results", {"ids": [], "page": 2}, 422, "page"),
    post_json("results body a list", "/jobs/results", ["{job}"], 400, "body"),
    raw("job patch body a list", "PATCH", JOB, "[1]"),
    Case("job patch kwargs list", "PATCH", JOB, 422, "kwargs", json={"kwargs": [1]}),
    Case("job patch unknown", "PATCH", JOB, 422, "retries", json={"retries": 3}),
    # Bundles.
    Case("bundle never uploaded", "POST", "/functions/{fresh}/bundle", 409, "bundle"),
    upload("bundle empty", "{upload}", b"", 400, "bundle"),
    upload(
        "bundle too large",
        "{upload}",
        b"x" * 2000,
        413,
        "bundle",
        config={"MAX_BUNDLE_BYTES": 1000},
    ),
    upload(
        "upload expiry not a number", "{upload_bad_expiry}", b"zip", 404, None, detail=NO_UPLOAD
    ),
    upload("upload signature empty", "{upload_no_signature}", b"zip", 404, None, detail=NO_UPLOAD),
    upload("upload unknown function", "{upload_unknown}", b"zip", 404, None, detail=NO_UPLOAD),
    # Routing.
    Case("unknown route", "GET", "/nothing", 404),
    Case("method not allowed", "PUT", FN, 405),
    Case("id with nul", "GET", "/functions/%00", 404),
]


@pytest.fixture
def target(api_server: ApiServer, api: ApiClient) -> dict[str, str]:
    function, url = create_with_upload(api)
    assert put_bundle(url).status_code == 200
    (job,) = submit(api, function["id"], [[1]], reference_id=TARGET_REFERENCE)
    fresh, _ = create_with_upload(api)
    return {
        "function": function["id"],
        "job": job["id"],
        "fresh": fresh["id"],
        "upload": url,
        "upload_unknown": url.replace(function["id"], UNKNOWN),
        "upload_bad_expiry": re.sub(r"expires=\d+", "expires=soon", url),
        "upload_no_signature": re.sub(r"signature=\w+", "signature=", url),
    }


def fill(value: Any, target: dict[str, str]) -> Any:
    """`value` with `{function}`, `{job}`, ... placeholders replaced by the target's values."""
    if isinstance(value, str):
        # Longest names first: `{upload}` is a prefix of `{upload_unknown}`.
        for name in sorted(target, key=len, reverse=True):
            value = value.replace("{" + name + "}", target[name])
        return value
    if isinstance(value, bytes):
        return value
    if isinstance(value, list) and len(value) < 1000:
        return [fill(item, target) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, target) for key, item in value.items()}
    return value


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input_is_refused_without_change(
    api_server: ApiServer,
    api: ApiClient,
    target: dict[str, str],
    case: Case,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in (case.config or {}).items():
        monkeypatch.setitem(api_server.app.config, name, value)
    before = snapshot(api_server)
    kwargs: dict[str, Any] = {"headers": case.headers, "params": case.params}
    if case.json is not None:
        kwargs["json"] = fill(case.json, target)
    if case.data is not None:
        kwargs["data"] = fill(case.data, target)
    response = api.request(case.method, fill(case.path, target), **kwargs)
    assert response.status_code == case.status, response.text[:500]
    body = response.json()
    assert body["detail"] and isinstance(body["errors"], dict)
    if case.field is not None:
        assert case.field in body["errors"], body
    if case.detail is not None:
        assert case.detail in body["detail"], body
    assert before.differences(snapshot(api_server)) == []


def test_there_are_many_cases() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)
    assert all(400 <= case.status < 500 for case in CASES)


def test_every_endpoint_has_bad_input(api_server: ApiServer) -> None:
    """Each route and method of the API is the target of at least one case."""
    adapter = api_server.app.url_map.bind("localhost")
    placeholders = {
        "function": UNKNOWN,
        "job": UNKNOWN,
        "fresh": UNKNOWN,
        "upload": f"{API_PREFIX}/functions/{UNKNOWN}/bundle_upload?expires=1&signature=x",
        "upload_unknown": f"{API_PREFIX}/functions/{UNKNOWN}/bundle_upload",
        "upload_bad_expiry": f"{API_PREFIX}/functions/{UNKNOWN}/bundle_upload",
        "upload_no_signature": f"{API_PREFIX}/functions/{UNKNOWN}/bundle_upload",
    }
    covered: set[tuple[str, str]] = set()
    for case in CASES:
        path = urlparse(fill(case.path, placeholders)).path
        path = path if path.startswith(API_PREFIX) else API_PREFIX + path
        try:
            endpoint, _ = adapter.match(path, method=case.method)
        except HTTPException:  # the routing cases match no route, on purpose
            continue
        covered.add((endpoint, case.method))
    routes = {
        (rule.endpoint, method)
        for rule in api_server.app.url_map.iter_rules()
        if rule.rule.startswith(API_PREFIX)
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    assert routes - covered == set()
