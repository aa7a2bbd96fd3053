"""The JSON wire format: models to JSON, and request bodies to validated values.

Datetimes go out as ISO-8601 UTC with exactly six fractional digits and `+00:00`, the
form Python 3.10's parser accepts. Validation names the offending field in a 422.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import has_request_context, request

from compute.server.models import SUBMISSION_KEY_LENGTH, Function, Job
from compute.server.stored_json import Unreadable, text_problem
from compute.server.transitions import NewJob
from compute.statuses import FunctionStatus, JobStatus

from .errors import BadRequest, Invalid
from .json_input import parse_body

FUNCTION_READONLY = frozenset({"id", "creation_date", "status", "job_statistics"})
FUNCTION_IMMUTABLE = frozenset({"image"})
JOB_READONLY = frozenset({"id", "creation_date", "status", "runtime"})
JOB_IMMUTABLE = frozenset({"function_id"})

NAME_PATTERN = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,200}$")
IMAGE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(:[A-Za-z0-9._-]{1,100})?$")
# Matched whole (fullmatch): `$` would let a trailing newline through.
SUBMISSION_KEY_PATTERN = re.compile(rf"[^\x00-\x1f\x7f]{{1,{SUBMISSION_KEY_LENGTH}}}")
SUBMISSION_KEY_RULE = (
    f"must be 1-{SUBMISSION_KEY_LENGTH} characters without control characters or lone surrogates"
)

# The two names a client gives a submission key by: a bulk body field, a request header.
REFERENCE_ID = "reference_id"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"

# The published 2.0.x client's `Function.wait_for_completion` returns only on `success`
# or `failure`: told `build_failed`, it would poll until its timeout, forever by default.
STALLED_BY_BUILD_FAILED = re.compile(r"dl-python/2\.0\.")

# Statuses outside the published protocol reach only clients that name them in this
# header (our SDK sends `canceled`); any other client reads a canceled job as a `failure`,
# whose reason says "canceled", since the published client cannot parse the status.
STATUSES_HEADER = "X-Compute-Statuses"
PROTOCOL_JOB_STATUSES = frozenset(
    {JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.TIMEOUT}
)

MAX_CPUS = 256.0
MAX_MEMORY_MB = 4 * 1024 * 1024
MAX_CONCURRENCY = 100_000
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600
MAX_RETRY_COUNT = 100


@functools.lru_cache(maxsize=4096)
def format_datetime(value: dt.datetime | None) -> str | None:
    # Cached: every job of one submission shares its creation date.
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def function_to_json(function: Function, include_statistics: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": function.id,
        "creation_date": format_datetime(function.creation_date),
        "name": function.name,
        "image": function.image,
        "cpus": function.cpus,
        "memory": function.memory,
        "maximum_concurrency": function.maximum_concurrency,
        "timeout": function.timeout,
        "retry_count": function.retry_count,
        "status": _function_status(function),
    }
    if include_statistics:
        body["job_statistics"] = _job_statistics(function.job_statistics())
    return body


def understood_statuses() -> frozenset[str]:
    """The job statuses this request's client can read: the protocol's, plus those it
    names in `X-Compute-Statuses` (comma-separated)."""
    if not has_request_context():
        return frozenset(JobStatus)
    named = request.headers.get(STATUSES_HEADER, "")
    return PROTOCOL_JOB_STATUSES | {name.strip() for name in named.split(",")}


def wire_job_status(status: str) -> str:
    """A job's status as this request's client can read it."""
    if status == JobStatus.CANCELED and status not in understood_statuses():
        return str(JobStatus.FAILURE.value)
    return status


def _job_statistics(counts: dict[str, int]) -> dict[str, int]:
    if JobStatus.CANCELED in understood_statuses():
        return counts
    counts = dict(counts)
    counts[JobStatus.FAILURE] += counts.pop(JobStatus.CANCELED, 0)
    return counts


def _function_status(function: Function) -> str:
    """The function's status as this request's client can wait on it."""
    if function.status != FunctionStatus.BUILD_FAILED or not has_request_context():
        return function.status
    if STALLED_BY_BUILD_FAILED.match(request.headers.get("User-Agent", "")):
        # Its jobs are all final (they fail with the build), so `failure` is true too.
        return str(FunctionStatus.FAILURE)
    return function.status


def _readable(value: Any) -> Any:
    # A row stored before the input rules could hold arguments too deep to load: shown
    # as absent, so the job can still be listed and deleted.
    return None if isinstance(value, Unreadable) else value


def job_to_json(job: Job | NewJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "function_id": job.function_id,
        "creation_date": format_datetime(job.creation_date),
        "args": _readable(job.args),
        "kwargs": _readable(job.kwargs),
        "runtime": job.runtime,
        "status": wire_job_status(job.status),
        "attempt": job.attempt,
        "error": job.error,
        "start_date": format_datetime(job.start_date),
        "end_date": format_datetime(job.end_date),
    }


def json_body(kind: type = dict) -> Any:
    """The request's JSON body, checked by `json_input`, which must be a `kind`; else a 4xx."""
    if not request.is_json:
        raise BadRequest("The request body must be JSON (Content-Type: application/json).")
    body = parse_body(request.get_data(cache=True))
    if not isinstance(body, kind):
        raise BadRequest(
            f"The request body must be a JSON {kind.__name__}.",
            {"body": [f"expected a JSON {'object' if kind is dict else 'array'}"]},
        )
    return body


# --- field validators: each takes the raw value and returns the clean one or raises ---


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(name: str, low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if not _is_number(value) or not math.isfinite(value) or value != int(value):
            raise Invalid.field(name, "must be an integer")
        if not low <= value <= high:
            raise Invalid.field(name, f"must be between {low} and {high}")
        return int(value)

    return check


def positive_float(name: str, high: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if not _is_number(value) or not math.isfinite(value):
            raise Invalid.field(name, "must be a number")
        if not 0 < value <= high:
            raise Invalid.field(name, f"must be greater than 0 and at most {high:g}")
        return float(value)

    return check


def matching(name: str, pattern: re.Pattern[str], rule: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise Invalid.field(name, rule)
        return value

    return check


FUNCTION_FIELD_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "name": matching(
        "name", NAME_PATTERN, "must be 1-200 characters without '/', '\\' or control characters"
    ),
    "image": matching(
        "image", IMAGE_PATTERN, "must look like 'python3.11:latest' (letters, digits, . _ -)"
    ),
    "cpus": positive_float("cpus", MAX_CPUS),
    "memory": integer("memory", 1, MAX_MEMORY_MB),
    "maximum_concurrency": integer("maximum_concurrency", 1, MAX_CONCURRENCY),
    "timeout": integer("timeout", 1, MAX_TIMEOUT_SECONDS),
    "retry_count": integer("retry_count", 0, MAX_RETRY_COUNT),
}

FUNCTION_DEFAULTS: dict[str, Any] = {
    "name": "function",
    "cpus": 1.0,
    "memory": 2048,
    "maximum_concurrency": 10,
    "timeout": 1800,
    "retry_count": 0,
}


def _validate_fields(
    body: dict[str, Any],
    fields: dict[str, Callable[[Any], Any]],
    readonly: frozenset[str],
) -> dict[str, Any]:
    """Validate every field, collecting all errors before raising one 422."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name, value in body.items():
        if name in readonly:
            errors[name] = ["is read-only"]
        elif name not in fields:
            errors[name] = ["is not a known field"]
        else:
            try:
                clean[name] = fields[name](value)
            except Invalid as error:
                errors.update(error.errors)
    if errors:
        names = ", ".join(f"'{name}'" for name in sorted(errors))
        raise Invalid(f"Invalid fields: {names}", errors)
    return clean


def function_create(body: dict[str, Any], default_image: str) -> dict[str, Any]:
    values = _validate_fields(body, FUNCTION_FIELD_VALIDATORS, FUNCTION_READONLY)
    return {**FUNCTION_DEFAULTS, "image": default_image, **values}


def function_patch(body: dict[str, Any], function: Function) -> dict[str, Any]:
    values = _validate_fields(body, FUNCTION_FIELD_VALIDATORS, FUNCTION_READONLY)
    for name in FUNCTION_IMMUTABLE & values.keys():
        if values[name] != getattr(function, name):
            raise Invalid.field(name, "cannot be changed once set")
    return values


def job_args(name: str) -> Callable[[Any], list[Any] | None]:
    def check(value: Any) -> list[Any] | None:
        if value is not None and not isinstance(value, list):
            raise Invalid.field(name, "must be a list of positional arguments or null")
        return value

    return check


def job_kwargs(name: str) -> Callable[[Any], dict[str, Any] | None]:
    def check(value: Any) -> dict[str, Any] | None:
        if value is not None and not isinstance(value, dict):
            raise Invalid.field(name, "must be an object of keyword arguments or null")
        return value

    return check


def function_id_field(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid.field("function_id", "must be a function id")
    return value


JOB_FIELD_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "function_id": function_id_field,
    "args": job_args("args"),
    "kwargs": job_kwargs("kwargs"),
}


def job_create(body: dict[str, Any]) -> dict[str, Any]:
    values = _validate_fields(body, JOB_FIELD_VALIDATORS, JOB_READONLY)
    if "function_id" not in values:
        raise Invalid.field("function_id", "is required")
    return values


def rerun_request(body: dict[str, Any]) -> str:
    """The function id of a rerun; any other field (a filter, say) is refused, not ignored."""
    values = _validate_fields(body, {"function_id": function_id_field}, frozenset())
    if "function_id" not in values:
        raise Invalid.field("function_id", "is required")
    function_id: str = values["function_id"]
    return function_id


def cancel_request(body: dict[str, Any], max_ids: int) -> list[str] | None:
    """The job ids a function's cancel names (None: all its unfinished jobs)."""

    def job_ids_field(value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise Invalid.field("job_ids", "must be a list of job ids")
        if len(value) > max_ids:
            raise Invalid.field("job_ids", f"must name at most {max_ids} jobs")
        return value

    values = _validate_fields(body, {"job_ids": job_ids_field}, frozenset())
    job_ids: list[str] | None = values.get("job_ids")
    return job_ids


def job_patch(body: dict[str, Any], job: Job) -> dict[str, Any]:
    values = _validate_fields(body, JOB_FIELD_VALIDATORS, JOB_READONLY)
    for name in JOB_IMMUTABLE & values.keys():
        if values[name] != getattr(job, name):
            raise Invalid.field(name, "cannot be changed once set")
    return values


@dataclass(frozen=True)
class BulkRequest:
    """A validated bulk submission: one (args, kwargs) per job, in input order."""

    function_id: str
    calls: list[tuple[Any, Any]]
    reference_id: str | None


def bulk_create(body: dict[str, Any], max_jobs: int) -> BulkRequest:
    """Validate a bulk submission; `reference_id` is optional (the published client has none)."""
    unknown = body.keys() - {"function_id", "bulk_args", "bulk_kwargs", REFERENCE_ID}
    if unknown:
        raise Invalid(
            f"Unknown fields: {', '.join(sorted(unknown))}",
            {name: ["is not a known field"] for name in unknown},
        )
    function_id = function_id_field(body.get("function_id"))
    reference_id = body.get(REFERENCE_ID)
    if reference_id is not None and not _is_submission_key(reference_id):
        raise Invalid.field(REFERENCE_ID, SUBMISSION_KEY_RULE)
    bulk_args = body.get("bulk_args")
    bulk_kwargs = body.get("bulk_kwargs")
    if not isinstance(bulk_args, list):
        raise Invalid.field("bulk_args", "must be a list with one entry per job")
    if len(bulk_args) > max_jobs:
        raise Invalid.field("bulk_args", f"must have at most {max_jobs} entries")
    if bulk_kwargs is not None:
        if not isinstance(bulk_kwargs, list) or len(bulk_kwargs) != len(bulk_args):
            raise Invalid.field(
                "bulk_kwargs", "must be null or a list of the same length as bulk_args"
            )
        if not all(isinstance(kwargs, dict) for kwargs in bulk_kwargs):
            raise Invalid.field("bulk_kwargs", "every entry must be an object")
    args_list = [args if isinstance(args, list) else [args] for args in bulk_args]
    kwargs_list = bulk_kwargs if bulk_kwargs is not None else [None] * len(args_list)
    return BulkRequest(function_id, list(zip(args_list, kwargs_list)), reference_id)


def idempotency_key() -> str | None:
    """The request's `Idempotency-Key` header, if it sent one; a 400 naming it if malformed.

    A header sent twice reaches the app as one value joined by commas, a key like any other.
    """
    value = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if value is None:
        return None
    if not _is_submission_key(value):
        raise BadRequest(
            f"Invalid {IDEMPOTENCY_KEY_HEADER} header: {SUBMISSION_KEY_RULE}",
            {IDEMPOTENCY_KEY_HEADER: [SUBMISSION_KEY_RULE]},
        )
    return value


def _is_submission_key(value: Any) -> bool:
    return (
        isinstance(value, str)
        and SUBMISSION_KEY_PATTERN.fullmatch(value) is not None
        and text_problem(value) is None
    )
