"""The suite's figures, in the order of the table, each with its baseline and target.

Those with no measurement yet are listed all the same, so every run shows the whole plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import latency, results, submit, throughput
from .builds import measure as measure_builds
from .concurrency import measure as measure_concurrency
from .context import Bench
from .memory import measure as measure_memory
from .report import Row
from .search import measure as measure_search

Measure = Callable[[Bench], list[Row]]


@dataclass(frozen=True)
class Figure:
    """One figure of the plan.

    Attributes:
        number: Its number in the table.
        title: What it measures.
        baseline: What it is measured against, in the same run.
        target: The target, as text.
        measure: Measures it; None while it is not measured yet.
        order: When it runs: figure 5 reads figure 1's jobs before figure 4 adds its
            own, and figure 3, which pauses the worker, comes last.
    """

    number: int
    title: str
    baseline: str
    target: str
    measure: Measure | None = None
    order: int = 0


FIGURES = (
    Figure(
        1,
        "no-op throughput: fn.map(range(N)) until every job succeeded",
        "raw Celery on the same Redis, same process count, no result backend",
        ">= 0.5x baseline; aim 0.8x",
        throughput.measure,
        order=1,
    ),
    Figure(
        2,
        "100 ms jobs, maximum_concurrency=4, 200 jobs: makespan",
        "raw Celery -c 4",
        "<= 1.1x, cap never exceeded",
        measure_concurrency,
        # On a service of its own, stopped at its end: it needs nothing of the other
        # figures, and leaves them nothing.
        order=1,
    ),
    Figure(
        3,
        "fn.map submit of 10,000 and 100,000 args",
        "a bulk insert and a pipelined publish written by hand",
        "10k <= 1 s; 100k <= 5 s",
        submit.measure,
        order=4,
    ),
    Figure(
        4,
        "warm latency fn(x) -> result, p50 / p95",
        "raw Celery round trip + one Flask request",
        "p50 <= 15 ms, p95 <= 50 ms",
        latency.measure,
        order=3,
    ),
    Figure(
        5,
        "fn.results() of figure 1's jobs",
        "reading the same bytes from the blob store directly",
        "<= 1 s",
        results.measure,
        order=2,
    ),
    Figure(
        6,
        "Job.search page of 100 by status at 1,000,000 jobs in PostgreSQL",
        "the same query in raw SQL",
        "<= 50 ms at any depth",
        measure_search,
        # On an API and database of its own: it needs nothing of the other figures.
        order=3,
    ),
    Figure(
        7,
        "builds: cold with one small requirement, warm cache, reuse",
        "uv by hand",
        "cold <= 1.5x uv; reuse <= 50 ms",
        measure_builds,
        # First: it needs nothing of the other figures, and leaves them nothing.
        order=0,
    ),
    Figure(
        8,
        "idle memory: worker host, each warm executor",
        "an idle raw Celery worker; a bare interpreter",
        "<= 1.25x; executor <= bare + imports + 5 MB",
        measure_memory,
        # Idle after the figures that run jobs: the same order as figure 4, later in the
        # plan, so after it, and before figure 3 pauses the worker.
        order=3,
    ),
)

MEASURED = frozenset(figure.number for figure in FIGURES if figure.measure is not None)
