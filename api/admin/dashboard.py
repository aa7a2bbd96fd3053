"""The dashboard (`/admin/`): functions with their job counts, jobs ended per minute,
the queues and the workers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, render_template, request

from compute.server.extensions import db
from compute.server.models import Function
from compute.statuses import JobStatus

from .activity import jobs_per_minute
from .blueprint import blueprint
from .live import regions_response
from .paging import newest_first
from .scope import function_scope, job_scope, owner_names, picked_owner, user_choices
from .workers import broker_view

REGIONS = ["job_totals", "queues", "workers", "activity_chart", "function_rows"]
# Functions with jobs waiting whose queues count toward the total queue depth.
QUEUED_FUNCTIONS = 1000


def status_totals(scope: sa.ColumnElement[bool]) -> dict[str, int]:
    """Jobs per status over the functions of `scope`, from their per-status counters."""
    columns = [
        sa.func.coalesce(sa.func.sum(getattr(Function, f"{status.value}_count")), 0)
        for status in JobStatus
    ]
    row = db.session.execute(sa.select(*columns).where(scope)).one()
    return {status.value: int(count) for status, count in zip(JobStatus, row)}


def dashboard_context() -> dict[str, Any]:
    owner = picked_owner()
    scope = function_scope(owner)
    page = newest_first(Function, scope, request.args.get("after"))
    waiting = db.session.scalars(
        sa.select(Function.id).where(scope, Function.pending_count > 0).limit(QUEUED_FUNCTIONS)
    )
    return {
        "owner": owner,
        "page": page,
        "after": request.args.get("after"),
        "totals": status_totals(scope),
        "minutes": jobs_per_minute(job_scope(owner)),
        "broker": broker_view([*waiting, *(function.id for function in page.rows)], True),
        "owners": owner_names({function.owner_id for function in page.rows}),
    }


@blueprint.get("/")
def dashboard() -> str:
    return render_template("admin/dashboard.html", users=user_choices(), **dashboard_context())


@blueprint.get("/live/dashboard")
def dashboard_live() -> Response:
    return regions_response(REGIONS, **dashboard_context())
