"""Keep each function's per-status job counts and its wire status in step with its jobs.

Every change to job rows calls `record_job_changes` in the same transaction. One UPDATE
applies the count deltas and recomputes the status from the new counts, so concurrent
writers (API requests, worker processes) never lose an increment.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, cast

import sqlalchemy as sa

from compute.statuses import FunctionStatus, JobStatus

from ..extensions import DbSession, matched_rows
from ..models import BuildState, Function, Job

# The tables themselves: statements on them skip the ORM's bulk-update machinery, which
# costs more than the statement itself on a no-op job's path.
JOBS = cast("sa.Table", Job.__table__)
FUNCTIONS = cast("sa.Table", Function.__table__)


def count_column(status: str) -> sa.orm.InstrumentedAttribute[int]:
    name = f"{JobStatus(status).value}_count"
    column: sa.orm.InstrumentedAttribute[int] = getattr(Function, name)
    return column


def status_expression(
    build_state: sa.SQLColumnExpression[str],
    counts: Mapping[JobStatus, sa.SQLColumnExpression[int]],
) -> sa.ColumnElement[str]:
    """The wire status of a function, given SQL expressions for its build state and counts."""
    outstanding = counts[JobStatus.PENDING] + counts[JobStatus.RUNNING]
    unsuccessful = (
        counts[JobStatus.FAILURE] + counts[JobStatus.TIMEOUT] + counts[JobStatus.CANCELED]
    )
    return sa.case(
        (build_state != BuildState.BUILT, build_state),
        (outstanding > 0, FunctionStatus.RUNNING.value),
        (unsuccessful > 0, FunctionStatus.FAILURE.value),
        else_=FunctionStatus.SUCCESS.value,
    )


def status_update_values(deltas: Mapping[str, int]) -> dict[str, sa.ColumnElement[Any]]:
    """SET clauses applying `deltas` (job status -> change in count) and the new status."""
    new_counts = {status: count_column(status) + deltas.get(status, 0) for status in JobStatus}
    values: dict[str, sa.ColumnElement[Any]] = {
        f"{status.value}_count": new_counts[status] for status in JobStatus if deltas.get(status, 0)
    }
    values["status"] = status_expression(Function.build_state, new_counts)
    return values


def record_job_changes(session: DbSession, function_id: str, deltas: Mapping[str, int]) -> None:
    """Apply job-count deltas to a function and recompute its status."""
    changes = tuple(sorted((JobStatus(status).value, change) for status, change in deltas.items()))
    session.execute(_count_update(changes), {"changed_function": function_id})


@functools.cache
def _count_update(changes: tuple[tuple[str, int], ...]) -> sa.Update:
    # Built once per set of deltas: a worker applies the same few on every job, and
    # building the statement costs more than running it.
    return (
        sa.update(FUNCTIONS)
        .where(FUNCTIONS.c.id == sa.bindparam("changed_function"))
        .values(status_update_values(dict(changes)))
    )


def set_build_state(
    session: DbSession, function_id: str, build_state: str, from_state: str | None = None
) -> bool:
    """Move a function's build along and recompute its status from its job counts.

    With `from_state`, only a function still in that state moves; returns whether it moved.
    """
    counts = {status: count_column(status) for status in JobStatus}
    statement = sa.update(Function).where(Function.id == function_id)
    if from_state is not None:
        statement = statement.where(Function.build_state == from_state)
    result = session.execute(
        statement.values(
            build_state=build_state,
            status=status_expression(sa.literal(build_state), counts),
        ).execution_options(synchronize_session=False)
    )
    return matched_rows(result) == 1
