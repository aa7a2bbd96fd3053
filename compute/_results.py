"""Reading many jobs' results in few requests (`POST /jobs/results`), for `Function.results`.

A service without that endpoint (an older one) answers 404: the caller then reads each
result on its own, as before.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterable, Iterator
from typing import TypeVar

from ._client import ComputeClient
from ._exceptions import NotFoundError

RESULTS_PER_REQUEST = 1000
RESULTS_PATH = "/jobs/results"

T = TypeVar("T")


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last may be shorter), as they come."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def fetch_results(client: ComputeClient, job_ids: list[str]) -> dict[str, bytes] | None:
    """The stored result of each job of `job_ids` that still exists (b"" for none), or
    None when the service has no bulk endpoint."""
    found: dict[str, bytes] = {}
    waiting = list(job_ids)
    while waiting:
        asked, waiting = waiting[:RESULTS_PER_REQUEST], waiting[RESULTS_PER_REQUEST:]
        try:
            answer = client.json("POST", RESULTS_PATH, json_body={"ids": asked})
        except NotFoundError:
            return None
        for entry in answer["data"]:
            encoded = entry.get("result")
            found[entry["id"]] = base64.b64decode(encoded) if encoded is not None else b""
        # What did not fit in one answer is asked for again, first.
        waiting = list(answer["meta"]["remaining"]) + waiting
    return found
