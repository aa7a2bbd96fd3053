"""What the pages' buttons do: rerun failed jobs, cancel jobs, delete a function.

Each action goes through the same code as its API endpoint, with the same ownership
rule: another user's function or job is a 404 (an admin may act on all). Each answers
with a redirect back to a page (post/redirect/get), saying what it did in a flash.
"""

from __future__ import annotations

from flask import flash, redirect, url_for
from werkzeug.wrappers import Response

from compute.server.extensions import db
from compute.server.models import Function, Job
from compute.server.transitions import Canceled, reset_for_rerun

from ..cancels import cancel
from ..errors import Conflict
from ..ownership import get_owned
from ..resources.functions import remove_function
from ..resources.jobs import announce, function_accepting_jobs
from .blueprint import blueprint


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def canceled_message(outcome: Canceled) -> str:
    if not outcome.canceled and not outcome.stopping:
        return "Nothing to cancel: no pending or running job."
    return (
        f"Canceled {plural(len(outcome.canceled), 'pending job')}; "
        f"asked {plural(len(outcome.stopping), 'running job')} to stop."
    )


@blueprint.post("/functions/<function_id>/rerun")
def rerun_failed(function_id: str) -> Response:
    target = url_for("admin.function_page", function_id=function_id)
    try:
        function = function_accepting_jobs(function_id)
    except Conflict as refusal:
        flash(refusal.detail, "error")
        return redirect(target)
    ids = reset_for_rerun(db.session, function.id)
    db.session.commit()
    announce(function, ids)
    flash(f"Resubmitted {plural(len(ids), 'job')}.", "success")
    return redirect(target)


@blueprint.post("/functions/<function_id>/cancel")
def cancel_function_jobs(function_id: str) -> Response:
    function = get_owned(Function, function_id)
    flash(canceled_message(cancel(function.id)), "success")
    return redirect(url_for("admin.function_page", function_id=function.id))


@blueprint.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    job = get_owned(Job, job_id)
    flash(canceled_message(cancel(job.function_id, [job.id])), "success")
    return redirect(url_for("admin.job_page", job_id=job.id))


@blueprint.post("/functions/<function_id>/delete")
def delete_function(function_id: str) -> Response:
    name = get_owned(Function, function_id).name
    remove_function(function_id)
    flash(f"Deleted the function {name!r} with its jobs.", "success")
    return redirect(url_for("admin.dashboard"))
