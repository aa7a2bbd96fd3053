"""Keyset pages of functions and jobs, newest first, for the admin tables.

A page's position is the last row's creation date and id, never an offset: the tables
refresh every few seconds while jobs come and go, and an offset would shift under them.
Both orderings follow the `(owner_id | function_id, [status,] creation_date, id)`
indexes of the models.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa

from compute.server.extensions import db
from compute.server.models import Function, Job

PAGE_SIZE = 50
SEPARATOR = "~"

Row = TypeVar("Row", Function, Job)


@dataclass(frozen=True)
class Page(Generic[Row]):
    rows: list[Row]
    # The cursor of the page after this one; None on the last page.
    next_cursor: str | None


def cursor_of(row: Function | Job) -> str:
    return f"{row.creation_date.isoformat()}{SEPARATOR}{row.id}"


def parse_cursor(text: str | None) -> tuple[dt.datetime, str] | None:
    """The position a cursor names; None for none, or for one that is not a cursor
    (a hand-edited URL starts from the first page rather than failing)."""
    if not text or SEPARATOR not in text:
        return None
    moment, _, row_id = text.partition(SEPARATOR)
    try:
        parsed = dt.datetime.fromisoformat(moment)
    except ValueError:
        return None
    if parsed.tzinfo is None or not row_id or "\x00" in row_id:
        return None
    return parsed, row_id


def newest_first(
    model: type[Row], where: sa.ColumnElement[bool], cursor: str | None, size: int = PAGE_SIZE
) -> Page[Row]:
    """One page of `model` rows matching `where`, newest first, after `cursor`."""
    statement = sa.select(model).where(where)
    position = parse_cursor(cursor)
    if position is not None:
        moment, row_id = position
        statement = statement.where(
            sa.or_(
                model.creation_date < moment,
                sa.and_(model.creation_date == moment, model.id < row_id),
            )
        )
    statement = statement.order_by(model.creation_date.desc(), model.id.desc()).limit(size + 1)
    rows = list(db.session.scalars(statement))
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, cursor_of(rows[-1]) if more else None)
