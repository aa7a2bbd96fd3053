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
