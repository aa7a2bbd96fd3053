"""Printing lists of records as an aligned table or as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

MISSING = "-"


def emit(records: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    """Print `records`: the whole objects as JSON, or `columns` of them as a table."""
    if as_json:
        click.echo(json.dumps(list(records), indent=2))
    else:
        click.echo(table(records, columns))


def table(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of `columns`, one record a row, with an upper-case header."""
    rows = [[column.upper() for column in columns]]
    rows += [[_cell(record.get(column)) for column in columns] for record in records]
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
