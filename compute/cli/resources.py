"""`compute functions` and `compute jobs`: look at your work from the shell."""

from __future__ import annotations

from typing import Any

import click

from compute.statuses import FunctionStatus, JobStatus

from .client import list_all
from .output import emit

FUNCTION_COLUMNS = ("id", "name", "status", "image", "cpus", "memory", "creation_date")
# Last: a long reason then runs past the table's right edge without pushing columns apart.
JOB_COLUMNS = ("id", "function_id", "status", "runtime", "creation_date", "reason")
# Enough for `ValueError: bad tile 17` and most messages; `--json` has the whole text.
MAX_REASON_CHARS = 100

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
limit_option = click.option(
    "--limit", type=click.IntRange(min=0), default=None, help="At most this many."
)


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
    """List your functions, oldest first."""
    records = list_all("/functions", {"status": list(status)}, limit)
    emit(records, FUNCTION_COLUMNS, as_json)


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
    """List your jobs, oldest first."""
    params: dict[str, object] = {"status": list(status)}
    if function_id:
        params["function_id"] = function_id
    emit(list_all("/jobs", params, limit), JOB_COLUMNS, as_json, {"reason": failure_reason})


def failure_reason(job: dict[str, Any]) -> str | None:
    """Why a failed or timed-out job ended so, on one line; None for any other job (a
    pending one may still hold the reason of the attempt before its retry)."""
    reason = job.get("error")
    if job.get("status") not in JobStatus.unsuccessful() or not reason:
        return None
    text = " ".join(str(reason).split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"
