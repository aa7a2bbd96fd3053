"""Figure 6: a page of 100 of `Job.search()` filtered by status, first, in the middle and
at the end of the list, with a million jobs in PostgreSQL; against the statements the API
runs for the same pages, sent straight to the database (`search_sql`).

The run's service keeps SQLite, so the figure brings up an API of its own on a fresh
PostgreSQL database (`postgres`, `postgres_api`) and writes the jobs straight into its
table (`job_rows`). The SDK reaches a deep page only by following each page's cursor from
the first, so the figure walks the whole search once, as a user paging through it does,
and times each page: from the request for it until its 100 Jobs are built. The first
page, which alone also reads the total, is timed on its own, taking turns with its
baseline; a deeper page's number is the median of `WINDOW` pages around the middle or at
the end of the walk, its baseline that of the same statements after the same rows.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from compute import Function, Job, Search
from compute.statuses import JobStatus

from . import job_rows, postgres
from .children import Children
from .context import Bench
from .noop import noop
from .postgres_api import sdk_pointed_at, start_api
from .report import Row
from .search_sql import PageQuery, Position, matching, milliseconds, plans

STATUS = JobStatus.FAILURE
PAGE_SIZE = 100
FIRST_PAGE_REPEATS = 5
WINDOW = 11
TARGET_MS = 50.0
FUNCTION_NAME = "bench-search"
DATA_DIR_NAME = "search-data"
DEPTHS = ("first", "middle", "last")


@dataclass(frozen=True)
class PageTime:
    """One page of the walk: its number from 1, how long it took, where it started."""

    number: int
    milliseconds: float
    after: Position | None


def measure(bench: Bench) -> list[Row]:
    jobs = bench.size.search_jobs
    try:
        with postgres.fresh_database(postgres.admin_url()) as database_url:
            return measure_on(bench, database_url, jobs)
    except postgres.Unreachable as error:
        server = postgres.server_name(postgres.admin_url())
        return [
            Row(
                figure=6,
                label=label(depth, jobs),
                target=target(),
                note=f"PostgreSQL not reachable at {server}",
                details={"error": str(error)},
            )
            for depth in DEPTHS
        ]


def measure_on(bench: Bench, database_url: str, jobs: int) -> list[Row]:
    """The figure's rows, with its API serving the empty database at `database_url`."""
    run_dir = bench.service.data_dir.parent
    with Children(run_dir) as children:
        api = start_api(children, run_dir / DATA_DIR_NAME, database_url)
        with sdk_pointed_at(api), postgres.connect(database_url) as connection:
            function = Function(noop, name=FUNCTION_NAME)
            function.save()
            job_rows.fill(database_url, function.id, jobs)
            query = PageQuery(owner_of(connection, function.id), STATUS, PAGE_SIZE)
            search = Job.search().filter(Job.status == STATUS).param(page_size=PAGE_SIZE)
            first = first_page_row(connection, search, query, function.id, jobs)
            walked = walk(search)
            deeper = [deep_row(connection, query, walked, depth, jobs) for depth in DEPTHS[1:]]
    return [first, *deeper]


def owner_of(connection: psycopg.Connection[TupleRow], function_id: str) -> str:
    found = connection.execute("SELECT owner_id FROM functions WHERE id = %s", (function_id,))
    (owner,) = found.fetchone() or (None,)
    if owner is None:
        raise RuntimeError(f"the function {function_id} is not in the database")
    return str(owner)


def first_page_row(
    connection: psycopg.Connection[TupleRow],
    search: Search[Job],
    query: PageQuery,
    function_id: str,
    jobs: int,
) -> Row:
    """The first page through the SDK and straight from the database, taking turns.

    The JSON adds the same page with the function named too, whose total the API reads
    from that one function's counters rather than from all of the caller's.
    """
    service, totals, pages = [], [], []
    for _ in range(FIRST_PAGE_REPEATS):
        service.append(first_page_milliseconds(search))
        baseline = milliseconds(connection, query)
        totals.append(baseline["total"])
        pages.append(baseline["page"])
    of_function = search.filter(Job.function_id == function_id)
    return row(
        "first",
        jobs,
        service,
        [total + page for total, page in zip(totals, pages)],
        {
            "postgresql": connection.info.parameter_status("server_version"),
            "matching_jobs": matching(connection, query),
            "baseline_total_ms": totals,
            "baseline_page_ms": pages,
            "service_ms_with_function_filter": [
                first_page_milliseconds(of_function) for _ in range(FIRST_PAGE_REPEATS)
            ],
            "plans": plans(connection, query),
        },
    )


def first_page_milliseconds(search: Search[Job]) -> float:
    """How long the SDK takes to hand back the first `PAGE_SIZE` Jobs of `search`."""
    started = time.perf_counter()
    got = sum(1 for _ in itertools.islice(search, PAGE_SIZE))
    elapsed = (time.perf_counter() - started) * 1000
    if got != PAGE_SIZE:
        raise AssertionError(f"the first page held {got} jobs, not {PAGE_SIZE}")
    return elapsed


def walk(search: Search[Job]) -> list[PageTime]:
    """Every full page of `search`, as the SDK pages through it, each timed."""
    pages = []
    after = None
    started = time.perf_counter()
    for index, job in enumerate(search, start=1):
        if index % PAGE_SIZE:
            continue
        now = time.perf_counter()
        pages.append(PageTime(index // PAGE_SIZE, (now - started) * 1000, after))
        after = Position(job.creation_date, job.id)
        started = now
    return pages


def window(walked: list[PageTime], depth: str) -> list[PageTime]:
    """The pages of the walk that stand for `depth`: around its middle, or its last."""
    later = walked[1:]  # the first page is timed on its own
    if not later:
        raise RuntimeError(f"the search has a single page: more jobs than {PAGE_SIZE} needed")
    if depth == "last":
        return later[-WINDOW:]
    centre = len(later) // 2
    return later[max(0, centre - WINDOW // 2) : centre + WINDOW // 2 + 1]


def deep_row(
    connection: psycopg.Connection[TupleRow],
    first_page: PageQuery,
    walked: list[PageTime],
    depth: str,
    jobs: int,
) -> Row:
    """The median page of the walk's `depth` window, and of the same statements."""
    pages = window(walked, depth)
    queries = [dataclasses.replace(first_page, after=page.after) for page in pages]
    baseline = [milliseconds(connection, query)["page"] for query in queries]
    return row(
        depth,
        jobs,
        [page.milliseconds for page in pages],
        baseline,
        {
            "page_numbers": [page.number for page in pages],
            "walk": walk_summary(walked),
            "plans": plans(connection, queries[len(queries) // 2]),
        },
    )


def row(
    depth: str, jobs: int, service: list[float], baseline: list[float], details: dict[str, Any]
) -> Row:
    value = statistics.median(service)
    return Row(
        figure=6,
        label=label(depth, jobs),
        unit="ms",
        service=value,
        baseline=statistics.median(baseline),
        target=target(),
        met=value <= TARGET_MS,
        details={
            "jobs": jobs,
            "status": STATUS.value,
            "page_size": PAGE_SIZE,
            "service_ms": service,
            "baseline_ms": baseline,
            **details,
        },
    )


def walk_summary(walked: list[PageTime]) -> dict[str, Any]:
    """The whole walk: its full pages, how long they took, and their times."""
    times = [page.milliseconds for page in walked]
    return {
        "pages": len(walked),
        "seconds": sum(times) / 1000,
        "page_ms_p50": statistics.median(times),
        "page_ms_max": max(times),
        "slowest_page": max(walked, key=lambda page: page.milliseconds).number,
    }


def label(depth: str, jobs: int) -> str:
    return f"Job.search by status, {depth} page of {PAGE_SIZE}, {jobs:,} jobs"


def target() -> str:
    return f"<= {TARGET_MS:g} ms at any depth"
