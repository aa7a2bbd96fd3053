"""`compute functions`: list, inspect, cancel and delete your functions from the shell."""

from __future__ import annotations

import click

from compute._function import JOB_STATISTICS, Function
from compute.statuses import FunctionStatus

from .client import record_of, service_errors
from .human import counts, megabytes, moment, whole_seconds
from .options import json_option, limit_option, listing
from .output import Derived, emit, emit_one

FUNCTION_COLUMNS = ("id", "name", "status", "image", "cpus", "memory", "creation_date")
FUNCTION_FIELDS = (
    *FUNCTION_COLUMNS,
    "maximum_concurrency",
    "timeout",
    "retry_count",
    "job_statistics",
)
FUNCTION_UNITS: Derived = {
    "memory": lambda function: megabytes(function.get("memory")),
    "timeout": lambda function: whole_seconds(function.get("timeout")),
    "creation_date": lambda function: moment(function.get("creation_date")),
    "job_statistics": lambda function: counts(function.get("job_statistics")),
}


@click.group()
def functions() -> None:
    """Your functions."""


@functions.command(name="list")
@click.option(
    "--status",
    multiple=True,
    type=click.Choice([status.value for status in FunctionStatus]),
    help="Only functions in this status (repeatable).",
)
@limit_option
@json_option
def list_functions(status: tuple[str, ...], limit: int | None, as_json: bool) -> None:
    """List your functions, newest first."""
    search = listing(Function.search(), Function, status, limit)
    with service_errors("functions"):
        records = [record_of(function) for function in search]
    emit(records, FUNCTION_COLUMNS, as_json, FUNCTION_UNITS)


@functions.command(name="get")
@click.argument("function_id")
@json_option
def get_function(function_id: str, as_json: bool) -> None:
    """Show FUNCTION_ID, with its jobs counted by status."""
    with service_errors(f"function {function_id}"):
        function = Function.get(function_id, include=[JOB_STATISTICS])
    emit_one(record_of(function), FUNCTION_FIELDS, as_json, FUNCTION_UNITS)


@functions.command(name="build-log")
@click.argument("function_id")
def build_log(function_id: str) -> None:
    """Print the build log of FUNCTION_ID."""
    with service_errors(f"function {function_id}"):
        text = Function.get(function_id).read_build_log()
    click.echo(text, nl=not text.endswith("\n"))


@functions.command(name="delete")
@click.argument("function_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_function(function_id: str, yes: bool) -> None:
    """Delete FUNCTION_ID with all its jobs, results and logs."""
    subject = f"function {function_id}"
    with service_errors(subject):
        function = Function.get(function_id, include=[JOB_STATISTICS])
    if not yes:
        jobs = sum((function.job_statistics or {}).values())
        click.confirm(
            f"Delete function {function.name} ({function_id}) and its {jobs} jobs?", abort=True
        )
    with service_errors(subject):
        function.delete()
    click.echo(f"Deleted function {function_id}.", err=True)


@functions.command(name="cancel")
@click.argument("function_id")
@json_option
def cancel_function_jobs(function_id: str, as_json: bool) -> None:
    """Cancel every pending and running job of FUNCTION_ID."""
    with service_errors(f"function {function_id}"):
        outcome = Function.get(function_id).cancel_jobs()
    if as_json:
        emit_one(outcome, (), as_json)
    else:
        click.echo(
            f"Canceled {outcome.get('canceled', 0)} pending jobs; "
            f"{outcome.get('stopping', 0)} running jobs are stopping."
        )
