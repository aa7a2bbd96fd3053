"""Answer `meta.total` for a function's jobs from its per-status counters.

Counting a million matching rows costs tens of milliseconds on every first page; the
common filters (one function or all of the caller's, optionally some statuses) are
already counted in the function rows. Any other filter returns None and the caller
counts in SQL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from compute.server.extensions import DbSession
from compute.server.models import Function
from compute.statuses import JobStatus


def _leaf(term: Any, name: str) -> Any:
    if isinstance(term, dict) and term.get("name") == name and term.get("op") == "eq":
        return term.get("val")
    return None


def _statuses(term: Any) -> set[str] | None:
    values = term.get("or") if isinstance(term, dict) and "or" in term else [term]
    if not isinstance(values, list):
        return None
    statuses = {_leaf(value, "status") for value in values}
    if None in statuses or not statuses <= {status.value for status in JobStatus}:
        return None
    return statuses


def job_total_from_counters(
    session: DbSession, terms: list[Any], function_scope: sa.ColumnElement[bool]
) -> int | None:
    """The number of jobs matching `terms`, when they name at most one function and
    maybe statuses: one function's counters, or the sum of every function's in scope."""
    function_ids = [value for term in terms if (value := _leaf(term, "function_id")) is not None]
    if len(function_ids) > 1 or not all(isinstance(value, str) for value in function_ids):
        return None
    statuses: set[str] = {status.value for status in JobStatus}
    for term in terms:
        if _leaf(term, "function_id") is not None:
            continue
        wanted = _statuses(term)
        if wanted is None:
            return None
        statuses &= wanted
    columns = [getattr(Function, f"{status}_count") for status in sorted(statuses)]
    if not columns:
        return 0
    counted = sum(columns[1:], columns[0])
    if function_ids:
        statement = sa.select(counted).where(Function.id == function_ids[0], function_scope)
    else:
        statement = sa.select(sa.func.sum(counted)).where(function_scope)
    total = session.scalar(statement)
    return int(total or 0)
