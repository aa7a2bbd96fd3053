"""Functions over HTTP: create, read, change, delete, bundle upload and submission, build log."""

from __future__ import annotations

import gzip
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import pytest

from compute.server.models import BuildState
from compute.statuses import FunctionStatus
from tests.api.helpers import (
    building_function,
    bundle_bytes,
    create_with_upload,
    put_bundle,
    set_build,
    set_job_status,
    submit,
)
from tests.conftest import ApiClient, ApiServer, create_function

FUNCTION_KEYS = {
    "id",
    "creation_date",
    "name",
    "image",
    "cpus",
    "memory",
    "maximum_concurrency",
    "timeout",
    "retry_count",
    "status",
}
ALL_FIELDS = {
    "name": "square",
    "image": "python3.11:latest",
    "cpus": 2.5,
    "memory": 4096,
    "maximum_concurrency": 3,
    "timeout": 60,
    "retry_count": 2,
}


def with_query(url: str, **changes: str) -> str:
    parts = urlparse(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunparse(parts._replace(query=urlencode(query)))


# --- create and read ---


def test_create_with_defaults(api_server: ApiServer, api: ApiClient) -> None:
    response = api.post("/functions", json={})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"function", "bundle_upload_url"}
    function = body["function"]
    assert set(function) == FUNCTION_KEYS
    assert function["status"] == FunctionStatus.AWAITING_BUNDLE
    assert function["cpus"] == 1.0 and isinstance(function["cpus"], float)
    assert function["memory"] == 2048
    assert function["retry_count"] == 0
    assert function["image"] == api_server.app.config["DEFAULT_IMAGE"]
    assert function["creation_date"].endswith("+00:00")
    assert len(function["creation_date"].split(".")[1]) == len("000000+00:00")
    url = urlparse(body["bundle_upload_url"])
    assert body["bundle_upload_url"].startswith(api_server.root_url)
    assert function["id"] in url.path
    assert {"expires", "signature"} <= set(parse_qs(url.query))


def test_create_with_all_fields(api: ApiClient) -> None:
    function = create_function(api, **ALL_FIELDS)
    assert {name: function[name] for name in ALL_FIELDS} == ALL_FIELDS
    fetched = api.get(f"/functions/{function['id']}").json()
    assert fetched == function


def test_get_with_job_statistics(api: ApiClient) -> None:
    function = create_function(api)
    plain = api.get(f"/functions/{function['id']}").json()
    assert "job_statistics" not in plain
    submit(api, function["id"], [1, 2])
    response = api.get(f"/functions/{function['id']}", params={"include": "job.statistics"})
    assert response.status_code == 200
    statistics = response.json()["job_statistics"]
    assert statistics == {"pending": 2, "running": 0, "success": 0, "failure": 0, "timeout": 0}
    bad = api.get(f"/functions/{function['id']}", params={"include": "jobs"})
    assert bad.status_code == 400 and "include" in bad.json()["errors"]


def test_unknown_function_is_404(api: ApiClient) -> None:
    response = api.get("/functions/" + "0" * 32)
    assert response.status_code == 404
    assert response.json()["detail"]


# --- change ---


def test_patch_mutable_fields(api: ApiClient) -> None:
    function = create_function(api)
    changes = {"name": "renamed", "cpus": 4, "memory": 1024, "timeout": 5, "retry_count": 3}
    response = api.patch(f"/functions/{function['id']}", json=changes)
    assert response.status_code == 200
    assert {name: response.json()[name] for name in changes} == changes
    assert api.get(f"/functions/{function['id']}").json() == response.json()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "x"),
        ("creation_date", "2020-01-01T00:00:00+00:00"),
        ("status", "success"),
        ("job_statistics", {}),
    ],
)
def test_patch_readonly_field_refused(api: ApiClient, field: str, value: object) -> None:
    function = create_function(api)
    response = api.patch(f"/functions/{function['id']}", json={field: value})
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert api.get(f"/functions/{function['id']}").json() == function


def test_image_cannot_change_but_may_be_repeated(api: ApiClient) -> None:
    function = create_function(api, image="python3.11:latest")
    refused = api.patch(f"/functions/{function['id']}", json={"image": "python3.12:latest"})
    assert refused.status_code == 422
    assert "image" in refused.json()["errors"]
    same = api.patch(
        f"/functions/{function['id']}", json={"image": "python3.11:latest", "memory": 512}
    )
    assert same.status_code == 200
    assert same.json()["image"] == "python3.11:latest" and same.json()["memory"] == 512


# --- delete ---


def test_delete_removes_jobs_bundle_and_blobs(api_server: ApiServer, api: ApiClient) -> None:
    function = building_function(api)
    function_id = function["id"]
    jobs = submit(api, function_id, [1, 2, 3])
    store = api_server.app.extensions["blobstore"]
    store.put(f"jobs/{function_id}/{jobs[0]['id']}/result", b"42")
    store.put(f"build-logs/{function_id}.log", b"built")
    blobs = api_server.data_dir / "blobs"
    assert (blobs / "bundles" / f"{function_id}.zip").exists()

    assert api.delete(f"/functions/{function_id}").status_code == 204

    assert api.get(f"/functions/{function_id}").status_code == 404
    for job in jobs:
        assert api.get(f"/jobs/{job['id']}").status_code == 404
    assert not (blobs / "bundles" / f"{function_id}.zip").exists()
    assert not (blobs / "build-logs" / f"{function_id}.log").exists()
    assert not (blobs / "jobs" / function_id).exists()
    listed = api.get("/jobs", params={"function_id": function_id}).json()
    assert listed == {"data": [], "meta": {"page_cursor": None, "total": 0}}
    assert api.delete(f"/functions/{function_id}").status_code == 404


# --- bundle upload and submission ---


def test_bundle_put_needs_no_auth_and_post_starts_build(api: ApiClient) -> None:
    function, url = create_with_upload(api)
    response = put_bundle(url)
    assert response.status_code == 200
    posted = api.post(f"/functions/{function['id']}/bundle")
    assert posted.status_code == 200
    assert posted.json()["status"] == FunctionStatus.BUILDING


@pytest.mark.parametrize("param", ["signature", "expires"])
def test_tampered_upload_url_is_404(api: ApiClient, param: str) -> None:
    _, url = create_with_upload(api)
    value = parse_qs(urlparse(url).query)[param][0]
    tampered = value[:-1] + ("0" if value[-1] != "0" else "1")
    assert put_bundle(with_query(url, **{param: tampered})).status_code == 404
    assert put_bundle(with_query(url, **{param: "junk"})).status_code == 404


def test_expired_upload_url_is_404(
    api_server: ApiServer, api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(api_server.app.config, "BUNDLE_UPLOAD_TTL_SECONDS", -10)
    function, url = create_with_upload(api)
    assert put_bundle(url).status_code == 404
    assert api.post(f"/functions/{function['id']}/bundle").status_code == 409


def test_upload_url_is_for_one_function(api: ApiClient) -> None:
    first, first_url = create_with_upload(api)
    second, _ = create_with_upload(api)
    borrowed = first_url.replace(first["id"], second["id"])
    assert put_bundle(borrowed).status_code == 404
    assert api.post(f"/functions/{second['id']}/bundle").status_code == 409


def test_repeat_put_replaces_the_bundle(api_server: ApiServer, api: ApiClient) -> None:
    function, url = create_with_upload(api)
    assert put_bundle(url, bundle_bytes("main = 1\n")).status_code == 200
    second = bundle_bytes("main = 2\n")
    assert put_bundle(url, second).status_code == 200
    stored = api_server.data_dir / "blobs" / "bundles" / f"{function['id']}.zip"
    assert stored.read_bytes() == second


def test_put_after_post_is_409(api: ApiClient) -> None:
    function, url = create_with_upload(api)
    assert put_bundle(url).status_code == 200
    assert api.post(f"/functions/{function['id']}/bundle").status_code == 200
    assert put_bundle(url).status_code == 409


def test_empty_bundle_is_400(api: ApiClient) -> None:
    function, url = create_with_upload(api)
    response = put_bundle(url, b"")
    assert response.status_code == 400
    assert "bundle" in response.json()["errors"]
    assert api.post(f"/functions/{function['id']}/bundle").status_code == 409


def test_oversized_bundle_is_413(
    api_server: ApiServer, api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(api_server.app.config, "MAX_BUNDLE_BYTES", 1000)
    function, url = create_with_upload(api)
    response = put_bundle(url, b"x" * 5000)
    assert response.status_code == 413
    assert not (api_server.data_dir / "blobs" / "bundles" / f"{function['id']}.zip").exists()
    assert put_bundle(url, b"x" * 1000).status_code == 200


def test_post_bundle_before_put_is_409(api: ApiClient) -> None:
    function, _ = create_with_upload(api)
    response = api.post(f"/functions/{function['id']}/bundle")
    assert response.status_code == 409
    assert "bundle" in response.json()["errors"]
    assert api.get(f"/functions/{function['id']}").json()["status"] == "awaiting_bundle"


def test_repeat_post_bundle_changes_nothing(api_server: ApiServer, api: ApiClient) -> None:
    function = building_function(api)
    again = api.post(f"/functions/{function['id']}/bundle")
    assert again.status_code == 200
    assert again.json() == function
    # Once built (and with finished jobs), a repeat neither rebuilds nor resets the status.
    set_build(api_server, function["id"], BuildState.BUILT)
    (job,) = submit(api, function["id"], [1])
    set_job_status(api_server, [job["id"]], "success", runtime=1.0)
    built = api.get(f"/functions/{function['id']}").json()
    assert built["status"] == FunctionStatus.SUCCESS
    assert api.post(f"/functions/{function['id']}/bundle").json() == built
    assert api.get(f"/functions/{function['id']}").json() == built


def test_build_log_is_gzip_without_content_encoding(api_server: ApiServer, api: ApiClient) -> None:
    function = building_function(api)
    empty = api.get(f"/functions/{function['id']}/log")
    assert empty.status_code == 200
    assert "Content-Encoding" not in empty.headers
    assert gzip.decompress(empty.content) == b""
    api_server.app.extensions["blobstore"].put(
        f"build-logs/{function['id']}.log", b"Collecting numpy\nbuilt\n"
    )
    response = api.get(f"/functions/{function['id']}/log")
    assert "Content-Encoding" not in response.headers
    assert response.content[:2] == b"\x1f\x8b"
    assert gzip.decompress(response.content) == b"Collecting numpy\nbuilt\n"
