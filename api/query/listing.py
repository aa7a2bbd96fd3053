"""Run a list request: parse its query, filter in SQL, and serve one keyset page.

The position after a page is the last row's sort values with `id` as the final
tie-breaker, never an offset: rows deleted while a client pages (as the published
client does when deleting a function's jobs) cannot make it skip any.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from compute.server.extensions import DbSession

from ..errors import BadRequest
from .cursor import decode_cursor, encode_cursor
from .fields import Field, ValueTypeError
from .filters import compile_filter, parse_filter_param

CountHint = Callable[[DbSession, list[Any]], "int | None"]

QUERY_PARAMS = {"filter", "sort", "limit", "page_size", "include", "page_cursor"}


@dataclass
class ListQuery:
    """Everything that defines a list, carried from page to page in the cursor."""

    terms: list[Any] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)
    limit: int | None = None
    page_size: int = 100
    include: list[str] = field(default_factory=list)
    served: int = 0
    total: int | None = None
    after: list[Any] | None = None


@dataclass(frozen=True)
class SortKey:
    name: str
    field: Field
    descending: bool


@dataclass
class Page:
    rows: list[Any]
    total: int
    cursor: str | None
    include: list[str]


def _int_param(args: MultiDict[str, str], name: str, low: int, high: int | None) -> int | None:
    raw = args.get(name)
    if raw is None:
        return None
    try:
        value = int(float(raw))
    except (ValueError, OverflowError) as error:  # "many", "nan", "1e400"
        raise BadRequest(f"'{name}' must be an integer.", {name: ["not an integer"]}) from error
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"'{name}' must be {bound}.", {name: [f"must be {bound}"]})
    return value


def parse_list_query(
    args: MultiDict[str, str],
    fields: dict[str, Field],
    allowed_includes: set[str],
    default_page_size: int,
    max_page_size: int,
    secret: str,
) -> ListQuery:
    """Read a list request's parameters, or the state its `page_cursor` carries."""
    if "page_cursor" in args:
        state = decode_cursor(args["page_cursor"], secret)
        try:
            query = ListQuery(**state)
        except TypeError as error:
            raise BadRequest("'page_cursor' is not a valid cursor.") from error
        # A client may change the page size between pages; nothing else.
        query.page_size = _int_param(args, "page_size", 1, max_page_size) or query.page_size
        return query
    unknown = set(args) - QUERY_PARAMS - set(fields)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise BadRequest(
            f"Unknown query parameter(s): {names}",
            {name: ["unknown parameter"] for name in unknown},
        )
    terms = parse_filter_param(args["filter"]) if "filter" in args else []
    # Legacy plain parameters: `?status=a&status=b` means status IN (a, b).
    for name in sorted(set(args) & set(fields)):
        values = args.getlist(name)
        leaves = [{"name": name, "op": "eq", "val": value} for value in values]
        terms.append(leaves[0] if len(leaves) == 1 else {"or": leaves})
    include = [item for value in args.getlist("include") for item in value.split(",") if item]
    bad_includes = set(include) - allowed_includes
    if bad_includes:
        allowed = ", ".join(sorted(allowed_includes)) or "none"
        raise BadRequest(
            f"Unknown include(s): {', '.join(sorted(bad_includes))}; allowed: {allowed}",
            {"include": ["unknown include"]},
        )
    sort = [value for item in args.getlist("sort") for value in item.split(",") if value]
    query = ListQuery(
        terms=terms,
        sort=sort,
        limit=_int_param(args, "limit", 0, None),
        page_size=_int_param(args, "page_size", 1, max_page_size) or default_page_size,
        include=include,
    )
    sort_keys(query, fields)  # validate now, before any SQL
    return query


def sort_keys(query: ListQuery, fields: dict[str, Field]) -> list[SortKey]:
    keys: list[SortKey] = []
    for item in query.sort or ["creation_date"]:
        descending = item.startswith("-")
        name = item.lstrip("-+")
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise BadRequest(
                f"Cannot sort by unknown attribute {name!r}; sortable: {known}",
                {"sort": [f"unknown attribute {name!r}"]},
            )
        keys.append(SortKey(name, fields[name], descending))
    if "id" not in {key.name for key in keys}:
        keys.append(SortKey("id", fields["id"], False))
    return keys


def _null_flag(column: Any) -> sa.ColumnElement[int]:
    return sa.case((column.is_(None), 1), else_=0)


def order_by_clauses(keys: list[SortKey]) -> list[Any]:
    clauses: list[Any] = []
    for key in keys:
        if key.field.nullable:
            clauses.append(_null_flag(key.field.column))  # nulls last, either direction
        clauses.append(key.field.column.desc() if key.descending else key.field.column.asc())
    return clauses


def after_condition(keys: list[SortKey], after: list[Any]) -> sa.ColumnElement[bool]:
    """Rows strictly after the position `after` in the order of `keys`."""
    try:
        values = [
            None if raw is None else key.field.convert(raw)
            for key, raw in zip(keys, after, strict=True)
        ]
    except (ValueTypeError, ValueError) as error:
        raise BadRequest("'page_cursor' is not a valid cursor.") from error
    uniform = len({key.descending for key in keys}) == 1
    if uniform and not any(key.field.nullable for key in keys):
        columns = sa.tuple_(*(key.field.column for key in keys))
        position = sa.tuple_(
            *(sa.literal(value, key.field.column.type) for key, value in zip(keys, values))
        )
        return columns < position if keys[0].descending else columns > position
    # General case: (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ..., with nulls after all values.
    alternatives: list[sa.ColumnElement[bool]] = []
    equal_so_far: list[sa.ColumnElement[bool]] = []
    for key, value in zip(keys, values):
        column = key.field.column
        beyond: sa.ColumnElement[bool]
        if value is None:
            beyond = sa.false()  # all nulls tie and nothing sorts after them
            equal = column.is_(None)
        else:
            beyond = column < value if key.descending else column > value
            if key.field.nullable:
                beyond = sa.or_(beyond, column.is_(None))
            equal = column == value
        alternatives.append(sa.and_(*equal_so_far, beyond))
        equal_so_far.append(equal)
    return sa.or_(*alternatives)


def _position_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def run_list_query(
    session: DbSession,
    model: Any,
    fields: dict[str, Field],
    scope: sa.ColumnElement[bool],
    query: ListQuery,
    secret: str,
    count_hint: CountHint | None = None,
) -> Page:
    """Serve the page of `query` within `scope` and the cursor to the next one.

    `count_hint`, when given, may answer the total without counting rows.
    """
    keys = sort_keys(query, fields)
    condition = sa.and_(scope, compile_filter(fields, query.terms))
    total = query.total
    if total is None and count_hint is not None:
        total = count_hint(session, query.terms)
    if total is None:
        total = session.scalar(sa.select(sa.func.count()).select_from(model).where(condition))
    remaining = query.page_size if query.limit is None else query.limit - query.served
    size = max(0, min(query.page_size, remaining))
    rows: list[Any] = []
    if size:
        statement = sa.select(model).where(condition)
        if query.after is not None:
            statement = statement.where(after_condition(keys, query.after))
        statement = statement.order_by(*order_by_clauses(keys)).limit(size + 1)
        rows = list(session.scalars(statement))
    more = len(rows) > size
    rows = rows[:size]
    cursor = None
    served = query.served + len(rows)
    if more and (query.limit is None or served < query.limit):
        last = rows[-1]
        state = ListQuery(
            terms=query.terms,
            sort=query.sort,
            limit=query.limit,
            page_size=query.page_size,
            include=query.include,
            served=served,
            total=total,
            after=[_position_value(getattr(last, key.field.column.key)) for key in keys],
        )
        cursor = encode_cursor(asdict(state), secret)
    return Page(rows=rows, total=total or 0, cursor=cursor, include=query.include)
