"""Canceling jobs: one (`POST /jobs/{id}/cancel`) or a function's (`POST
/functions/{id}/cancel`, all its unfinished jobs or the `job_ids` named).

A pending job is `canceled` at once and never starts; a running one keeps `running`
until its worker has stopped it (within a second) and recorded it `canceled`, with the
log it had printed. Canceling a job that has ended changes nothing.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from compute.server.models import Function, Job

from ..auth import authenticate_request
from ..cancels import cancel
from ..ownership import get_owned
from ..wire import cancel_request, job_to_json, json_body

blueprint = Blueprint("cancels", __name__)
blueprint.before_request(authenticate_request)


@blueprint.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    job = get_owned(Job, job_id)
    cancel(job.function_id, [job.id])
    return jsonify(job_to_json(get_owned(Job, job_id)))


@blueprint.post("/functions/<function_id>/cancel")
def cancel_function_jobs(function_id: str) -> Response:
    function = get_owned(Function, function_id)
    job_ids = None
    if request.content_length:
        job_ids = cancel_request(json_body(), current_app.config["MAX_BULK_JOBS"])
    outcome = cancel(function.id, job_ids)
    return jsonify({"canceled": len(outcome.canceled), "stopping": len(outcome.stopping)})
