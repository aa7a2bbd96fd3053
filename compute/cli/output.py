"""Printing records as an aligned table or as JSON: lists one record a row, a single
record one field a line."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

MISSING = "-"

#: A column computed from the record rather than read from one of its fields.
Derived = Mapping[str, Callable[[dict[str, Any]], Any]]


def emit(
    records: Sequence[dict[str, Any]],
    columns: Sequence[str],
    as_json: bool,
    derived: Derived | None = None,
) -> None:
    """Print `records`: the whole objects as JSON, or `columns` of them as a table."""
    if as_json:
        click.echo(json.dumps(list(records), indent=2))
    else:
        click.echo(table(records, columns, derived))


def emit_one(
    record: dict[str, Any], fields: Sequence[str], as_json: bool, derived: Derived | None = None
) -> None:
    """Print one record: the whole object as JSON, or `fields` of it one a line."""
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        click.echo(details(record, fields, derived))


def details(record: dict[str, Any], fields: Sequence[str], derived: Derived | None = None) -> str:
    """`fields` of `record`, one a line: the upper-case name, then the value, aligned."""
    derived = derived or {}
    width = max((len(field) for field in fields), default=0)
    return "\n".join(
        f"{field.upper().ljust(width)}  "
        + _cell(derived[field](record) if field in derived else record.get(field))
        for field in fields
    )


def table(
    records: Sequence[dict[str, Any]], columns: Sequence[str], derived: Derived | None = None
) -> str:
    """A plain-text table of `columns`, one record a row, with an upper-case header.

    A column named in `derived` shows what its function makes of the record.
    """
    derived = derived or {}
    rows = [[column.upper() for column in columns]]
    rows += [
        [_cell(derived[c](record) if c in derived else record.get(c)) for c in columns]
        for record in records
    ]
    widths = [max(len(row[index]) for row in rows) for index in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    )


def _cell(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)
