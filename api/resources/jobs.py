"""`/jobs`: submit one or many, rerun, read (or wait for the end: `?wait=S`), change,
delete, list, result and log (or its last bytes, `Range: bytes=-N`)."""

from __future__ import annotations

from functools import partial
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from compute.server.blobstore import CHUNK_SIZE, job_log_key, job_prefix, job_result_key
from compute.server.extensions import db
from compute.server.models import BuildState, Function, Job, SubmissionKind
from compute.server.transitions import NewJob, delete_job, insert_jobs, reset_for_rerun
from compute.statuses import JobStatus
from worker import publishing
from worker.stop_requests import ask_to_stop

from ..auth import authenticate_request, current_identity
from ..errors import Conflict, NotFound
from ..job_waits import requested_wait, wait_until_final
from ..ownership import get_owned, owner_scope
from ..query.fields import JOB_QUERY_FIELDS
from ..query.totals import job_total_from_counters
from ..submissions import SubmissionKey, find_submission, record_submission, replay, request_sha256
from ..tails import tail_response
from ..wire import (
    IDEMPOTENCY_KEY_HEADER,
    REFERENCE_ID,
    bulk_create,
    idempotency_key,
    job_create,
    job_patch,
    job_to_json,
    json_body,
    rerun_request,
)
from .paging import serve_list

blueprint = Blueprint("jobs", __name__)
blueprint.before_request(authenticate_request)

IN_CLAUSE_CHUNK = 1000


def function_accepting_jobs(function_id: str) -> Function:
    """The caller's function, locked, provided its build has not failed."""
    function = get_owned(Function, function_id, for_update=True)
    if function.build_state == BuildState.BUILD_FAILED:
        reason = function.build_error or "see the build log"
        raise Conflict(
            f"Function {function.id} failed to build ({reason}); it cannot run jobs.",
            {"function_id": ["build failed"]},
        )
    return function


def announce(function: Function, job_ids: list[str]) -> None:
    """Publish committed pending jobs for the workers (a building function's wait).

    When these are the function's only outstanding jobs it was idle, and workers started
    since its build may not consume its queue yet: ask them to.
    """
    was_idle = function.pending_count + function.running_count <= len(job_ids)
    publishing.jobs_submitted(
        function.id, job_ids, function.build_state == BuildState.BUILT, wake_consumers=was_idle
    )


def submit(
    function_id: str, calls: list[tuple[Any, Any]], key: SubmissionKey | None
) -> tuple[list[Job] | list[NewJob], int]:
    """Create one pending job per call (201), or answer a keyed repeat with its jobs (200).

    A keyed submission's row is written in the jobs' transaction, so of identical requests
    racing each other one commits and the others answer from its row.
    """
    owner_id = current_identity().user_id
    digest = request_sha256(function_id, calls) if key is not None else ""
    if key is not None and (earlier := find_submission(db.session, owner_id, key)):
        # Before the build check: a repeat of a map accepted before its function's build
        # failed gets those jobs back, not a refusal.
        return replay(db.session, earlier, key, digest), 200
    function = function_accepting_jobs(function_id)
    try:
        submission = None
        if key is not None:
            submission = record_submission(db.session, owner_id, key, function.id, digest)
        jobs = insert_jobs(db.session, function, calls)
        if submission is not None:
            submission.job_ids = [job.id for job in jobs]
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        earlier = find_submission(db.session, owner_id, key) if key is not None else None
        if key is None or earlier is None:
            raise
        return replay(db.session, earlier, key, digest), 200
    announce(function, [job.id for job in jobs])
    return jobs, 201


@blueprint.post("/jobs")
def create_job() -> tuple[Response, int]:
    values = job_create(json_body())
    header = idempotency_key()
    key = SubmissionKey(SubmissionKind.JOB, header, IDEMPOTENCY_KEY_HEADER) if header else None
    calls = [(values.get("args"), values.get("kwargs"))]
    jobs, status = submit(values["function_id"], calls, key)
    if not jobs:
        raise NotFound(
            f"The job created with this {IDEMPOTENCY_KEY_HEADER} has been deleted.",
            {IDEMPOTENCY_KEY_HEADER: ["names a job that has been deleted"]},
        )
    return jsonify(job_to_json(jobs[0])), status


@blueprint.post("/jobs/bulk")
def create_jobs() -> tuple[Response, int]:
    bulk = bulk_create(json_body(), current_app.config["MAX_BULK_JOBS"])
    key = None
    if bulk.reference_id is not None:
        key = SubmissionKey(SubmissionKind.BULK, bulk.reference_id, REFERENCE_ID)
    jobs, status = submit(bulk.function_id, bulk.calls, key)
    return jsonify([job_to_json(job) for job in jobs]), status


@blueprint.post("/jobs/rerun")
def rerun_jobs() -> tuple[Response, int]:
    function = function_accepting_jobs(rerun_request(json_body()))
    ids = reset_for_rerun(db.session, function.id)
    db.session.commit()
    announce(function, ids)
    jobs: list[Job] = []
    for start in range(0, len(ids), IN_CLAUSE_CHUNK):
        chunk = ids[start : start + IN_CLAUSE_CHUNK]
        jobs.extend(db.session.scalars(sa.select(Job).where(Job.id.in_(chunk))))
    jobs.sort(key=lambda job: (job.creation_date, job.id))
    return jsonify([job_to_json(job) for job in jobs]), 201


@blueprint.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    wait = requested_wait(request.args)
    job = get_owned(Job, job_id)
    if wait and job.status not in JobStatus.final():
        wait_until_final(job.id, wait)
        job = get_owned(Job, job_id)  # deleted meanwhile: a 404, as without the wait
    return jsonify(job_to_json(job))


@blueprint.patch("/jobs/<job_id>")
def patch_job(job_id: str) -> Response:
    job = get_owned(Job, job_id, for_update=True)
    values = job_patch(json_body(), job)
    if values and job.status != JobStatus.PENDING:
        raise Conflict(
            f"Job {job.id} is {job.status}; only a pending job's arguments can change.",
            {"status": [job.status]},
        )
    for name, value in values.items():
        setattr(job, name, value)
    db.session.commit()
    return jsonify(job_to_json(job))


@blueprint.delete("/jobs/<job_id>")
def delete_one_job(job_id: str) -> Response:
    # Not locked here: the deletion locks the function's row, then the job's (the order
    # every writer of both keeps).
    job = get_owned(Job, job_id)
    function_id, was_running = job.function_id, job.status == JobStatus.RUNNING
    if not delete_job(db.session, job):
        raise NotFound(f"Job {job_id!r} not found.")
    db.session.commit()
    if was_running:
        # Stopped at once, rather than when its worker next renews the lease.
        ask_to_stop([job_id])
    current_app.extensions["blobstore"].delete_prefix(job_prefix(function_id, job_id))
    return Response(status=204)


@blueprint.get("/jobs/<job_id>/result")
def get_result(job_id: str) -> Response:
    job = get_owned(Job, job_id)
    result = current_app.extensions["blobstore"].open(job_result_key(job.function_id, job.id))
    if result is None:
        return Response(b"", mimetype="application/octet-stream")
    # Streamed: a result may be tens of megabytes, in a file or a bucket alike.
    response = Response(iter(partial(result.read, CHUNK_SIZE), b""), direct_passthrough=True)
    response.mimetype = "application/octet-stream"
    response.call_on_close(result.close)
    return response


@blueprint.get("/jobs/<job_id>/log")
def get_log(job_id: str) -> Response:
    job = get_owned(Job, job_id)
    log = current_app.extensions["blobstore"].get(job_log_key(job.function_id, job.id))
    return tail_response(log or b"", "application/x-ndjson")


@blueprint.get("/jobs")
def list_jobs() -> Response:
    return serve_list(
        Job,
        JOB_QUERY_FIELDS,
        set(),
        lambda job, include: job_to_json(job),
        lambda session, terms: job_total_from_counters(session, terms, owner_scope(Function)),
    )
