"""Which attributes of each resource can be filtered and sorted, and how values are typed."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from strenum import StrEnum

from compute.server.models import Function, Job
from compute.server.stored_json import text_problem
from compute.statuses import FunctionStatus, JobStatus

# Integer columns are compared as signed 64-bit values: a larger integer is no value any
# row can hold, and the drivers refuse to send it (SQLite) or send it as another type.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ValueTypeError(ValueError):
    """A filter value that cannot be read as its attribute's type."""


def as_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueTypeError("expected a string")
    # No stored text holds a NUL or a lone surrogate, and the drivers refuse to send one.
    problem = text_problem(value)
    if problem is not None:
        raise ValueTypeError(f"the string {problem}")
    return value


def as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueTypeError("expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ValueTypeError("expected a number") from error
    except OverflowError as error:  # an integer past any double
        raise ValueTypeError("expected a finite number") from error
    if not math.isfinite(number):
        raise ValueTypeError("expected a finite number")
    return number


def as_int(value: Any) -> int:
    # An int is taken exactly: through a float, 2**63 would round to a value in range.
    exact = isinstance(value, int) and not isinstance(value, bool)
    number = value if exact else as_float(value)
    if number != int(number):
        raise ValueTypeError("expected an integer")
    number = int(number)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueTypeError(f"expected an integer between {INT64_MIN} and {INT64_MAX}")
    return number


def as_datetime(value: Any) -> dt.datetime:
    try:
        return _datetime(value)
    except ValueTypeError:
        raise
    except (ValueError, OverflowError, OSError) as error:
        # A timestamp like 1e30 or NaN, or an offset past year 1 or 9999 in UTC.
        raise ValueTypeError("expected a datetime between the years 1 and 9999") from error


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    if not isinstance(value, str):
        raise ValueTypeError("expected an ISO-8601 datetime")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueTypeError("expected an ISO-8601 datetime") from error
    if parsed.tzinfo is None:
        # The protocol's datetimes are UTC; a naive value is read as UTC too.
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def as_enum(enum: type[StrEnum]) -> Callable[[Any], str]:
    allowed = ", ".join(member.value for member in enum)

    def convert(value: Any) -> str:
        try:
            return str(enum(value))
        except ValueError as error:
            raise ValueTypeError(f"expected one of {allowed}") from error

    return convert


@dataclass(frozen=True)
class Field:
    """A queryable attribute: its column, how to read a value, and whether it is text."""

    column: sa.orm.InstrumentedAttribute[Any]
    convert: Callable[[Any], Any]
    is_text: bool = False
    nullable: bool = False


def text_field(column: Any) -> Field:
    return Field(column, as_string, is_text=True)


FUNCTION_QUERY_FIELDS: dict[str, Field] = {
    "id": text_field(Function.id),
    "creation_date": Field(Function.creation_date, as_datetime),
    "name": text_field(Function.name),
    "image": text_field(Function.image),
    "cpus": Field(Function.cpus, as_float),
    "memory": Field(Function.memory, as_int),
    "maximum_concurrency": Field(Function.maximum_concurrency, as_int),
    "timeout": Field(Function.timeout, as_int),
    "retry_count": Field(Function.retry_count, as_int),
    "status": Field(Function.status, as_enum(FunctionStatus), is_text=True),
}

JOB_QUERY_FIELDS: dict[str, Field] = {
    "id": text_field(Job.id),
    "function_id": text_field(Job.function_id),
    "creation_date": Field(Job.creation_date, as_datetime),
    "runtime": Field(Job.runtime, as_float, nullable=True),
    "status": Field(Job.status, as_enum(JobStatus), is_text=True),
    "attempt": Field(Job.attempt, as_int),
    "start_date": Field(Job.start_date, as_datetime, nullable=True),
    "end_date": Field(Job.end_date, as_datetime, nullable=True),
}
