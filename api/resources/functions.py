"""`/functions`: create, read, change, delete, list, build log, and bundle submission."""

from __future__ import annotations

import gzip

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request

from compute.server import transitions
from compute.server.blobstore import build_log_key, bundle_key, function_jobs_prefix
from compute.server.extensions import db
from compute.server.models import BuildState, Function, Job
from compute.server.transitions import set_build_state
from compute.statuses import JobStatus
from worker import publishing
from worker.stop_requests import ask_to_stop

from ..auth import authenticate_request, current_identity
from ..errors import BadRequest, Conflict
from ..ownership import get_owned
from ..query.fields import FUNCTION_QUERY_FIELDS
from ..wire import function_create, function_patch, function_to_json, json_body
from .paging import serve_list
from .uploads import bundle_upload_url

blueprint = Blueprint("functions", __name__)
blueprint.before_request(authenticate_request)

STATISTICS = "job.statistics"


def wants_statistics() -> bool:
    includes = [item for value in request.args.getlist("include") for item in value.split(",")]
    unknown = {item for item in includes if item} - {STATISTICS}
    if unknown:
        raise BadRequest(
            f"Unknown include(s): {', '.join(sorted(unknown))}; allowed: {STATISTICS}",
            {"include": ["unknown include"]},
        )
    return STATISTICS in includes


@blueprint.post("/functions")
def create_function() -> tuple[Response, int]:
    values = function_create(json_body(), current_app.config["DEFAULT_IMAGE"])
    function = Function(owner_id=current_identity().user_id, **values)
    db.session.add(function)
    db.session.commit()
    body = {
        "function": function_to_json(function),
        "bundle_upload_url": bundle_upload_url(function.id),
    }
    return jsonify(body), 201


@blueprint.get("/functions/<function_id>")
def get_function(function_id: str) -> Response:
    include_statistics = wants_statistics()
    function = get_owned(Function, function_id)
    return jsonify(function_to_json(function, include_statistics))


@blueprint.patch("/functions/<function_id>")
def patch_function(function_id: str) -> Response:
    function = get_owned(Function, function_id, for_update=True)
    for name, value in function_patch(json_body(), function).items():
        setattr(function, name, value)
    db.session.commit()
    return jsonify(function_to_json(function))


@blueprint.delete("/functions/<function_id>")
def delete_function(function_id: str) -> Response:
    remove_function(function_id)
    return Response(status=204)


def remove_function(function_id: str) -> None:
    """Delete one of the caller's functions with its jobs and blobs (404 if not theirs)."""
    function = get_owned(Function, function_id, for_update=True)
    running = list(
        db.session.scalars(
            sa.select(Job.id).where(Job.function_id == function.id, Job.status == JobStatus.RUNNING)
        )
    )
    transitions.delete_function(db.session, function)
    db.session.commit()
    publishing.function_deleted(function_id)
    # Stopped at once, rather than when their workers next renew their leases.
    ask_to_stop(running)
    # Blobs go after the rows: a crash in between leaves unreachable blobs, never rows
    # pointing at missing blobs.
    store = current_app.extensions["blobstore"]
    store.delete_prefix(function_jobs_prefix(function_id))
    store.delete(bundle_key(function_id))
    store.delete(build_log_key(function_id))


@blueprint.get("/functions/<function_id>/log")
def get_build_log(function_id: str) -> Response:
    function = get_owned(Function, function_id)
    log = current_app.extensions["blobstore"].get(build_log_key(function.id)) or b""
    # The published client gunzips the body itself: no Content-Encoding header.
    return Response(gzip.compress(log), mimetype="application/octet-stream")


@blueprint.post("/functions/<function_id>/bundle")
def submit_bundle(function_id: str) -> Response:
    function = get_owned(Function, function_id, for_update=True)
    if function.build_state == BuildState.AWAITING_BUNDLE:
        if function.bundle_key is None:
            raise Conflict(
                "No bundle has been uploaded for this function; PUT it to its "
                "bundle_upload_url first.",
                {"bundle": ["not uploaded"]},
            )
        # Conditional: on SQLite the row read above is not locked, and a repeated POST
        # racing this one must not request a second build.
        moved = set_build_state(
            db.session, function.id, BuildState.BUILDING, from_state=BuildState.AWAITING_BUNDLE
        )
        db.session.commit()
        db.session.refresh(function)
        if moved:
            publishing.request_build(function.id)
    return jsonify(function_to_json(function))


@blueprint.get("/functions")
def list_functions() -> Response:
    return serve_list(
        Function,
        FUNCTION_QUERY_FIELDS,
        {STATISTICS},
        lambda function, include: function_to_json(function, STATISTICS in include),
    )
