"""A job's page: its arguments, status and reason, attempts, log (tailed live) and a
preview of its result."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template, request

from compute.server.extensions import db
from compute.server.models import Function, Job
from compute.statuses import JobStatus

from ..ownership import get_owned
from .blueprint import blueprint
from .live import region_html
from .logs import attempts_of, read_log
from .previews import result_preview

REGIONS = ["job_summary", "job_attempts", "job_result"]


def job_context(job: Job) -> dict[str, Any]:
    return {
        "job": job,
        "final": job.status in JobStatus.final(),
        "attempts": attempts_of(job),
        "preview": result_preview(job),
    }


@blueprint.get("/jobs/<job_id>")
def job_page(job_id: str) -> str:
    job = get_owned(Job, job_id)
    return render_template(
        "admin/job.html",
        function=db.session.get(Function, job.function_id),
        log=read_log(job, None),
        **job_context(job),
    )


@blueprint.get("/live/jobs/<job_id>")
def job_live(job_id: str) -> Response:
    context = job_context(get_owned(Job, job_id))
    regions = {name: region_html(name, **context) for name in REGIONS}
    return jsonify({"regions": regions, "final": context["final"]})


@blueprint.get("/live/jobs/<job_id>/log")
def job_log(job_id: str) -> Response:
    """The log's whole lines after `?offset=`, and the offset to ask from next."""
    job = get_owned(Job, job_id)
    offset = request.args.get("offset", type=int)
    chunk = read_log(job, offset if offset is not None and offset >= 0 else None)
    return jsonify(
        {
            "lines": [{"date": line.date, "log": line.text} for line in chunk.lines],
            "offset": chunk.next_offset,
            "reset": chunk.reset,
            "final": job.status in JobStatus.final(),
        }
    )
