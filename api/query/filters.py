"""The filter grammar: a JSON list of ANDed terms, each a leaf or a nested `and`/`or`.

A leaf is `{"name": attr, "op": OP, "val": value}`; values are read as the attribute's
type before they reach SQL, so `1.0` matches an integer column and datetimes compare as
datetimes. Every mistake is a `BadRequest` that says which term is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ..errors import BadRequest
from ..json_input import parse_query
from .fields import Field, ValueTypeError, as_string

MAX_DEPTH = 8
MAX_TERMS = 200

COMPARISONS: dict[str, Callable[[Any, Any], sa.ColumnElement[bool]]] = {
    "eq": lambda column, value: column == value,
    "ne": lambda column, value: column != value,
    "gt": lambda column, value: column > value,
    "gte": lambda column, value: column >= value,
    "lt": lambda column, value: column < value,
    "lte": lambda column, value: column <= value,
}
TEXT_OPS = {"prefix", "ilike"}
NULL_OPS = {"isnull", "isnotnull"}
ALL_OPS = sorted({*COMPARISONS, *TEXT_OPS, *NULL_OPS})


def parse_filter_param(text: str) -> list[Any]:
    """Decode the `filter` query parameter into a list of terms."""
    terms = parse_query(text, "filter")
    if isinstance(terms, dict):
        terms = [terms]
    if not isinstance(terms, list):
        raise BadRequest("'filter' must be a JSON list of terms.", {"filter": ["not a list"]})
    return terms


class FilterCompiler:
    """Compiles filter terms into a SQL condition over one resource's fields."""

    def __init__(self, fields: dict[str, Field]) -> None:
        self.fields = fields
        self.term_count = 0

    def compile(self, terms: list[Any]) -> sa.ColumnElement[bool]:
        return sa.and_(sa.true(), *(self.term(term, depth=1) for term in terms))

    def term(self, term: Any, depth: int) -> sa.ColumnElement[bool]:
        self.term_count += 1
        if depth > MAX_DEPTH or self.term_count > MAX_TERMS:
            raise self.error(f"is too complex (at most {MAX_TERMS} terms, {MAX_DEPTH} levels)")
        if not isinstance(term, dict):
            raise self.error(f"term {json.dumps(term)} must be an object")
        for junction, combine in (("and", sa.and_), ("or", sa.or_)):
            if junction in term:
                parts = term[junction]
                if len(term) != 1 or not isinstance(parts, list) or not parts:
                    raise self.error(f"'{junction}' must be the only key, with a non-empty list")
                return combine(*(self.term(part, depth + 1) for part in parts))
        return self.leaf(term)

    def leaf(self, term: dict[str, Any]) -> sa.ColumnElement[bool]:
        name, op = term.get("name"), term.get("op")
        extra = term.keys() - {"name", "op", "val"}
        if extra:
            raise self.error(f"term has unknown keys: {', '.join(sorted(extra))}")
        if not isinstance(name, str) or name not in self.fields:
            known = ", ".join(sorted(self.fields))
            raise self.error(f"unknown attribute {name!r}; filterable: {known}")
        field = self.fields[name]
        if op not in ALL_OPS:
            raise self.error(f"unknown operator {op!r} on {name!r}; use one of {ALL_OPS}")
        column = field.column
        if op in NULL_OPS:
            return column.is_(None) if op == "isnull" else column.is_not(None)
        if "val" not in term:
            raise self.error(f"operator {op!r} on {name!r} needs a 'val'")
        if op in TEXT_OPS:
            if not field.is_text:
                raise self.error(f"operator {op!r} applies only to text attributes, not {name!r}")
            value = self.value(field, name, term["val"], convert=as_string)
            if op == "prefix":
                # SQLite's LIKE ignores ASCII case: the exact comparison keeps `prefix`
                # case-sensitive on every database, LIKE still lets an index narrow it.
                return sa.and_(
                    column.startswith(value, autoescape=True),
                    sa.func.substr(column, 1, len(value)) == value,
                )
            return column.ilike(value, escape="\\")
        value = self.value(field, name, term["val"], convert=field.convert)
        return COMPARISONS[op](column, value)

    def value(self, field: Field, name: str, raw: Any, convert: Callable[[Any], Any]) -> Any:
        if raw is None:
            raise self.error(f"'val' of {name!r} is null; use op 'isnull' or 'isnotnull'")
        try:
            return convert(raw)
        except ValueTypeError as error:
            raise self.error(f"value {raw!r} for {name!r}: {error}") from error

    @staticmethod
    def error(message: str) -> BadRequest:
        return BadRequest(f"Invalid filter: {message}", {"filter": [message]})


def compile_filter(fields: dict[str, Field], terms: list[Any]) -> sa.ColumnElement[bool]:
    return FilterCompiler(fields).compile(terms)
