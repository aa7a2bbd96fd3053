"""`compute jobs`: list and inspect your jobs, read their logs and results, rerun and
cancel them from the shell."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from compute._exceptions import JobFailedError
from compute._function import Function
from compute._job import Job
from compute.statuses import JobStatus

from .client import record_of, service_errors
from .exit_codes import CommandError, NotFound
from .human import moment, seconds
from .options import json_option, limit_option, listing
from .output import Derived, emit, emit_one

# Last: a long reason then runs past the table's right edge without pushing columns apart.
JOB_COLUMNS = ("id", "function_id", "status", "runtime", "creation_date", "reason")
JOB_FIELDS = ("id", "function_id", "status", "runtime", "creation_date", "args", "kwargs", "error")
ENDINGS = {
    JobStatus.FAILURE: "failed",
    JobStatus.TIMEOUT: "timed out",
    JobStatus.CANCELED: "was canceled",
}
# Enough for `ValueError: bad tile 17` and most messages; `--json` has the whole text.
MAX_REASON_CHARS = 100


def failure_reason(job: dict[str, Any]) -> str | None:
    """Why a failed or timed-out job ended so, on one line; None for any other job (a
    pending one may still hold the reason of the attempt before its retry)."""
    reason = job.get("error")
    if job.get("status") not in JobStatus.unsuccessful() or not reason:
        return None
    text = " ".join(str(reason).split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


JOB_UNITS: Derived = {
    "runtime": lambda job: seconds(job.get("runtime")),
    "creation_date": lambda job: moment(job.get("creation_date")),
    "reason": failure_reason,
    "error": lambda job: None if job.get("error") is None else " ".join(job["error"].split()),
}


@click.group()
def jobs() -> None:
    """Your jobs."""


@jobs.command(name="list")
@click.option("--function", "function_id", default=None, help="Only jobs of this function.")
@click.option(
    "--status",
    multiple=True,
    type=click.Choice([status.value for status in JobStatus]),
    help="Only jobs in this status (repeatable).",
)
@limit_option
@json_option
def list_jobs(
    function_id: str | None, status: tuple[str, ...], limit: int | None, as_json: bool
) -> None:
    """List your jobs, newest first."""
    # A function that does not exist has no jobs, but naming one is a mistake to report.
    search = Job.search() if function_id is None else _function(function_id).jobs
    search = listing(search, Job, status, limit)
    with service_errors("jobs"):
        records = [record_of(job) for job in search]
    emit(records, JOB_COLUMNS, as_json, JOB_UNITS)


@jobs.command(name="get")
@click.argument("job_id")
@json_option
def get_job(job_id: str, as_json: bool) -> None:
    """Show JOB_ID, with why it failed if it did."""
    emit_one(record_of(_job(job_id)), JOB_FIELDS, as_json, JOB_UNITS)


@jobs.command(name="logs")
@click.argument("job_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing lines until the job ends.")
@click.option("--timestamps/--no-timestamps", default=True, help="Prefix each line with its time.")
def logs(job_id: str, follow: bool, timestamps: bool) -> None:
    """Print what JOB_ID printed; with -f, as it prints it."""
    job = _job(job_id)
    with service_errors(f"job {job_id}"):
        for line in job.iter_log(timestamps=timestamps, follow=follow):
            click.echo(line)


@jobs.command(name="result")
@click.argument("job_id")
def result(job_id: str) -> None:
    """Print the value JOB_ID returned, as JSON; bytes it returned are written as they are."""
    job = _job(job_id)
    if job.status not in JobStatus.final():
        raise CommandError(f"job {job_id} is {job.status}: it has no result yet")
    with service_errors(f"job {job_id}"):
        try:
            value = job.result()
        except JobFailedError as failure:
            ended = ENDINGS.get(failure.status, str(failure.status))
            reason = failure.reason or "no reason was recorded"
            raise CommandError(f"job {job_id} {ended}: {reason}") from None
    if isinstance(value, bytes):
        sys.stdout.buffer.write(value)
        sys.stdout.buffer.flush()
    else:
        click.echo(json.dumps(value))


@jobs.command(name="rerun")
@click.option("--function", "function_id", required=True, help="The function whose jobs to rerun.")
@json_option
def rerun(function_id: str, as_json: bool) -> None:
    """Resubmit the failed, timed-out and canceled jobs of a function."""
    function = _function(function_id)
    with service_errors(f"function {function_id}"):
        resubmitted = [record_of(job) for job in function.rerun()]
    emit(resubmitted, JOB_COLUMNS, as_json, JOB_UNITS)
    click.echo(f"Resubmitted {len(resubmitted)} jobs.", err=True)


@jobs.command(name="cancel")
@click.argument("job_ids", nargs=-1, required=True)
def cancel(job_ids: tuple[str, ...]) -> None:
    """Cancel JOB_IDS: pending ones never start, running ones are stopped.

    Every job named is tried; the command fails (not found) if any was not found.
    """
    missing = []
    for job_id in job_ids:
        try:
            job = _job(job_id)
            with service_errors(f"job {job_id}"):
                job.cancel()
        except NotFound as error:
            click.echo(f"Error: {error.message}", err=True)
            missing.append(job_id)
            continue
        click.echo(f"{job_id}  {_after_cancel(job.status)}")
    if missing:
        raise NotFound(f"{len(missing)} of {len(job_ids)} jobs not found")


def _after_cancel(status: JobStatus) -> str:
    if status == JobStatus.CANCELED:
        return "canceled"
    if status == JobStatus.RUNNING:
        return "stopping"
    return f"already {status}"


def _job(job_id: str) -> Job:
    with service_errors(f"job {job_id}"):
        return Job.get(job_id)


def _function(function_id: str) -> Function:
    with service_errors(f"function {function_id}"):
        return Function.get(function_id)
