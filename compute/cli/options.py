"""What the listing commands share: their options and their order, newest first."""

from __future__ import annotations

from typing import TypeVar

import click

from compute._document import Document
from compute._function import Function
from compute._job import Job
from compute._search import Search

D = TypeVar("D", bound=Document)

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (one document) instead of a table."
)
limit_option = click.option(
    "--limit", type=click.IntRange(min=0), default=None, help="At most this many, the newest."
)


def newest_first(search: Search[D], document: type[Function] | type[Job]) -> Search[D]:
    """`search` ordered newest first; `id` breaks ties of one creation time (a bulk
    submission's jobs share it), in submission order reversed."""
    return search.sort(-document.creation_date, -document.id)


def listing(
    search: Search[D],
    document: type[Function] | type[Job],
    statuses: tuple[str, ...],
    limit: int | None,
) -> Search[D]:
    """What a `list` command shows: `search` newest first, in one of `statuses` if any
    are given, the newest `limit` only if given."""
    search = newest_first(search, document)
    if statuses:
        search = search.filter(document.status.in_(statuses))
    if limit is not None:
        search = search.limit(limit)
    return search
