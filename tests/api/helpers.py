"""Helpers for the API behaviour tests: bundles, builds and job outcomes set as a worker would.

Job execution happens in the worker; these tests move jobs through the transitions it
uses (`tests/job_moves.py`), so the API's reads (statuses, counts, filters, rerun) can be
checked without running any code.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from compute.server.extensions import db
from compute.server.models import BuildState, Function
from compute.server.transitions import set_build_state
from tests.conftest import ApiClient, ApiServer
from tests.job_moves import move_job


def bundle_bytes(source: str = "def main():\n    return 1\n") -> bytes:
    """A small valid code bundle."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__dlentrypoint__.py", source)
    return buffer.getvalue()


def create_with_upload(api: ApiClient, **fields: Any) -> tuple[dict[str, Any], str]:
    """Create a function; return its JSON and its bundle upload URL."""
    response = api.post("/functions", json={"name": "fn", **fields})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["function"], body["bundle_upload_url"]


def put_bundle(url: str, data: bytes | None = None) -> Any:
    """PUT a bundle to its signed URL with no Authorization header, as the client does."""
    import requests

    body = bundle_bytes() if data is None else data
    headers = {"Content-Type": "application/octet-stream"}
    return requests.put(url, data=body, headers=headers, timeout=30)


def building_function(api: ApiClient, **fields: Any) -> dict[str, Any]:
    """A function with its bundle uploaded and posted: status `building`."""
    function, url = create_with_upload(api, **fields)
    assert put_bundle(url).status_code == 200
    response = api.post(f"/functions/{function['id']}/bundle")
    assert response.status_code == 200, response.text
    return response.json()


def set_build(
    api_server: ApiServer, function_id: str, state: str, error: str | None = None
) -> None:
    """Move a function's build to `state` (a `BuildState`), as the build worker does."""
    with api_server.app.app_context():
        if error is not None:
            db.session.execute(
                sa.update(Function).where(Function.id == function_id).values(build_error=error)
            )
        set_build_state(db.session, function_id, state)
        db.session.commit()


def built_function(api_server: ApiServer, api: ApiClient, **fields: Any) -> dict[str, Any]:
    """A function whose build has succeeded."""
    function = building_function(api, **fields)
    set_build(api_server, function["id"], BuildState.BUILT)
    return function


def submit(api: ApiClient, function_id: str, bulk_args: list[Any], **body: Any) -> list[dict]:
    """Submit one job per entry of `bulk_args`; return the jobs."""
    payload = {"function_id": function_id, "bulk_args": bulk_args, **body}
    response = api.post("/jobs/bulk", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def set_job_status(
    api_server: ApiServer,
    job_ids: Iterable[str],
    status: str,
    runtime: float | None = None,
) -> None:
    """Move jobs to `status` as a worker would: claimed, then finished."""
    with api_server.app.app_context():
        for job_id in job_ids:
            move_job(db.session, job_id, status, runtime=runtime)
        db.session.remove()


TABLES = ("users", "functions", "jobs")


def db_snapshot(api_server: ApiServer) -> dict[str, Any]:
    """Row counts and a content hash of the users, functions and jobs tables."""
    snapshot: dict[str, Any] = {}
    with api_server.app.app_context():
        for table in TABLES:
            rows = db.session.execute(sa.text(f"SELECT * FROM {table} ORDER BY id")).all()
            digest = hashlib.sha256()
            for row in rows:
                digest.update(json.dumps([str(value) for value in row]).encode())
            snapshot[table] = (len(rows), digest.hexdigest())
    return snapshot
