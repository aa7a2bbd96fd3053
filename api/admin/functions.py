"""A function's page: its settings, job counts, build log and its jobs, by status."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, render_template, request

from compute.server.blobstore import build_log_key
from compute.server.models import Function, Job
from compute.statuses import JobStatus

from ..ownership import get_owned
from .blobs import read_slice
from .blueprint import blueprint
from .live import regions_response
from .logs import CHUNK_BYTES
from .paging import newest_first
from .scope import owner_names
from .workers import broker_view

REGIONS = ["function_summary", "job_rows"]


def picked_status() -> JobStatus | None:
    """The job status the table is filtered by (`?status=`); None for every status."""
    wanted = request.args.get("status", "")
    return JobStatus(wanted) if wanted in {status.value for status in JobStatus} else None


def function_context(function: Function) -> dict[str, Any]:
    status = picked_status()
    where = Job.function_id == function.id
    if status is not None:
        where = sa.and_(where, Job.status == status.value)
    return {
        "function": function,
        "status": status,
        "after": request.args.get("after"),
        "page": newest_first(Job, where, request.args.get("after")),
        "broker": broker_view([function.id]),
        "owners": owner_names({function.owner_id}),
    }


def build_log_tail(function: Function) -> tuple[str, int]:
    """The end of the build log as text, and how many bytes before it were left out."""
    key = build_log_key(function.id)
    size = read_slice(key, 0, 0).size
    start = max(0, size - CHUNK_BYTES)
    text = read_slice(key, start, CHUNK_BYTES).data.decode("utf-8", errors="replace")
    return text, start


@blueprint.get("/functions/<function_id>")
def function_page(function_id: str) -> str:
    function = get_owned(Function, function_id)
    build_log, build_log_skipped = build_log_tail(function)
    return render_template(
        "admin/function.html",
        build_log=build_log,
        build_log_skipped=build_log_skipped,
        **function_context(function),
    )


@blueprint.get("/live/functions/<function_id>")
def function_live(function_id: str) -> Response:
    return regions_response(REGIONS, **function_context(get_owned(Function, function_id)))


@blueprint.get("/functions/<function_id>/delete")
def confirm_delete(function_id: str) -> str:
    return render_template("admin/confirm_delete.html", function=get_owned(Function, function_id))
