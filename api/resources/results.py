"""`POST /jobs/results`: many jobs' results in one answer, for `Function.results()`.

One request per job made reading 10,000 results take minutes; this reads up to
`MAX_RESULT_IDS` of the caller's jobs at once. Results are bytes (a pickle or JSON the
job returned), carried as base64 in a JSON body. An answer holds results up to
`RESULT_BYTES_PER_ANSWER` (always at least one); the ids left over are named in
`meta.remaining` for the client to ask again. Jobs that are not the caller's, or no
longer exist, are left out, as a 404 would leave them out one by one.
"""

from __future__ import annotations

import base64
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify

from compute.server.blobstore import job_result_key
from compute.server.extensions import db
from compute.server.models import Job

from ..auth import authenticate_request
from ..errors import Invalid
from ..ownership import owner_scope
from ..wire import json_body

MAX_RESULT_IDS = 1000
RESULT_BYTES_PER_ANSWER = 32 * 1024 * 1024

blueprint = Blueprint("results", __name__)
blueprint.before_request(authenticate_request)


@blueprint.post("/jobs/results")
def read_results() -> Response:
    ids = _job_ids(json_body())
    # The columns the answer needs, not the rows: a job's arguments may be megabytes.
    found = {
        job.id: job
        for job in db.session.execute(
            sa.select(Job.id, Job.function_id, Job.status, Job.has_result).where(
                Job.id.in_(ids), owner_scope(Job)
            )
        )
    }
    store = current_app.extensions["blobstore"]
    entries: list[dict[str, Any]] = []
    remaining: list[str] = []
    used = 0
    for job_id in ids:
        job = found.get(job_id)
        if job is None:
            continue
        if remaining or (entries and used >= RESULT_BYTES_PER_ANSWER):
            remaining.append(job_id)
            continue
        result = store.get(job_result_key(job.function_id, job.id)) if job.has_result else None
        used += len(result or b"")
        entries.append(
            {
                "id": job.id,
                "status": job.status,
                "result": base64.b64encode(result).decode() if result is not None else None,
            }
        )
    return jsonify({"data": entries, "meta": {"remaining": remaining}})


def _job_ids(body: dict[str, Any]) -> list[str]:
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        raise Invalid.field("ids", "must be a list of job ids")
    if len(ids) > MAX_RESULT_IDS:
        raise Invalid.field("ids", f"at most {MAX_RESULT_IDS} ids per request")
    unknown = set(body) - {"ids"}
    if unknown:
        raise Invalid.field(sorted(unknown)[0], "is not a field of this request")
    return list(dict.fromkeys(ids))
